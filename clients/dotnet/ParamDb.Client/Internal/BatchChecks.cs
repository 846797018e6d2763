using ParamDb.Protocol;

namespace ParamDb.Client.Internal;

/// <summary>
/// The argument checks of a batch (parallel arrays of keys and row-major values), shared by the REST client and
/// the stream so both refuse exactly what the server would refuse, before anything is sent.
/// </summary>
internal static class BatchChecks
{
    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="name"/> is a valid table name.</summary>
    public static void CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!TableNames.IsValid(name))
            throw new ArgumentException($"\"{name}\" is not a table name: use 1…{TableNames.MaxLength} of [A-Za-z0-9_.-], not \".\" or \"..\".", nameof(name));
    }

    /// <summary>Throws unless the keys are strictly ascending (sorted, no duplicates).</summary>
    public static void CheckAscending(ReadOnlySpan<ulong> keys)
    {
        if (!KvBlock.CheckAscending(keys, out var error))
            throw new ArgumentException($"{error.Detail} ({error.Code})", "keys");
    }

    /// <summary>Throws when the range first … first + count - 1 runs past 2^64 - 1.</summary>
    public static void CheckRange(ulong first, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > 0 && first > ulong.MaxValue - (ulong)(count - 1))
            throw new ArgumentOutOfRangeException(nameof(first), $"The range {first} + {count} rows runs past 2^64 - 1.");
    }

    /// <summary>Floats per row of <paramref name="floats"/> spread over <paramref name="rows"/>; 0 when there are no rows.</summary>
    public static int RowWidth(int rows, int floats, string parameter)
    {
        if (rows == 0)
        {
            if (floats != 0) throw new ArgumentException($"No keys, but {floats} values.", parameter);
            return 0;
        }
        if (floats == 0 || floats % rows != 0)
            throw new ArgumentException($"{floats} floats are not a whole number of rows for {rows} keys (it must be keys × dim).", parameter);
        return floats / rows;
    }

    /// <summary>Rows of <paramref name="dim"/> floats in <paramref name="floats"/>; throws when it is not a whole number.</summary>
    public static int RowCount(int floats, int dim, string parameter)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 1);
        if (floats % dim != 0)
            throw new ArgumentException($"{floats} values are not a whole number of rows of {dim}.", parameter);
        return floats / dim;
    }

    /// <summary>Bytes of a KV block; throws when one request cannot hold it.</summary>
    public static int BlockSize(bool range, int count, int dim, bool values)
    {
        long size = KvBlockWriter.SizeOf(range, count, dim, values);
        if (size > Array.MaxLength)
            throw new ArgumentException($"{count} rows of dim {dim} make a {size}-byte block, too large for one request; split it.");
        return (int)size;
    }
}
