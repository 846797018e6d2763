using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>Checks a request's rows against its table before anything is applied: a rejected request changes nothing.</summary>
public static class RowRules
{
    /// <summary>
    /// Checks the row width and the key bound. Keys are already strictly ascending, so only the last one
    /// can break <c>maxKey</c>.
    /// </summary>
    /// <param name="table">The target table.</param>
    /// <param name="dim">The request's row width; a pull request may give 0.</param>
    /// <param name="isPull">True for a pull request.</param>
    /// <param name="count">Rows in the request.</param>
    /// <param name="lastKey">The largest key in the request.</param>
    /// <param name="error">The rejection when false.</param>
    public static bool Check(TableHandle table, int dim, bool isPull, int count, ulong lastKey, out ProtocolError error)
    {
        if (dim != table.Dim && !(isPull && dim == 0))
        {
            error = new ProtocolError(400, ProblemCodes.DimMismatch,
                $"Table '{table.Name}' has dim {table.Dim}; the request has rows of {dim} floats{(isPull ? " (a pull may also give 0)" : "")}.");
            return false;
        }
        if (count > 0 && table.Schema.MaxKey is { } maxKey && lastKey >= maxKey)
        {
            error = new ProtocolError(400, ProblemCodes.KeyOutOfRange,
                $"Key {lastKey} is outside table '{table.Name}': its keys are 0 … {maxKey - 1} (maxKey {maxKey}).");
            return false;
        }
        error = default;
        return true;
    }

    /// <summary>
    /// Unless the table's schema allows them, refuses a push whose values hold NaN or ±Infinity, naming the first
    /// bad row (<see cref="FiniteValues.Check"/>). One vectorised pass over the values, before anything is applied
    /// or logged.
    /// </summary>
    /// <param name="table">The target table.</param>
    /// <param name="values">The push's row-major values, already checked to be rows of the table's dim.</param>
    /// <param name="range">True for a dense range from <paramref name="first"/>.</param>
    /// <param name="first">The first key of a range.</param>
    /// <param name="keys">The explicit keys otherwise.</param>
    /// <param name="fromJson">True for a JSON body.</param>
    /// <param name="error">The rejection when false.</param>
    public static bool CheckFinite(TableHandle table, ReadOnlySpan<float> values, bool range, ulong first, ReadOnlySpan<ulong> keys, bool fromJson, out ProtocolError error)
    {
        if (table.Schema.AllowNonFinite || values.IsEmpty)
        {
            error = default;
            return true;
        }
        return FiniteValues.Check(table.Name, values, table.Dim, range, first, keys, fromJson, out error);
    }

    /// <summary>Checks that a reply of <paramref name="count"/> rows fits the reply size limit.</summary>
    public static bool CheckReplySize(TableHandle table, bool range, int count, long maxBytes, out long size, out ProtocolError error)
    {
        size = KvBlockWriter.SizeOf(range, count, table.Dim, values: true);
        if (size > maxBytes)
        {
            error = new ProtocolError(413, ProblemCodes.TooManyKeys,
                $"A reply of {count} rows × dim {table.Dim} would be {size} bytes, over the {maxBytes}-byte limit (--max-body-size); pull fewer keys per request.");
            return false;
        }
        error = default;
        return true;
    }
}
