using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using ParamDb.Protocol;

namespace ParamDb.Server.Http;

/// <summary>
/// Rows parsed from the JSON form of a KV block (docs/wire-format.md). The convenience path: it allocates per
/// row while parsing, and flattens values into one pooled array so the store sees what the binary path gives it.
/// </summary>
public sealed class JsonRows : IDisposable
{
    private float[]? _values;

    /// <summary>True for a dense range starting at <see cref="First"/>.</summary>
    public bool IsRange { get; private init; }
    /// <summary>First key of a range.</summary>
    public ulong First { get; private init; }
    /// <summary>Explicit keys (empty for a range).</summary>
    public ulong[] Keys { get; private init; } = [];
    /// <summary>Rows.</summary>
    public int Count { get; private init; }
    /// <summary>Row width of the pushed values; 0 for a pull.</summary>
    public int Dim { get; private init; }
    /// <summary>Largest key.</summary>
    public ulong LastKey => Count == 0 ? 0 : IsRange ? First + (ulong)(Count - 1) : Keys[^1];
    /// <summary>Row-major values of a push.</summary>
    public ReadOnlySpan<float> Values => _values.AsSpan(0, Count * Dim);

    /// <summary>Parses and validates a JSON push (<paramref name="push"/>) or pull request.</summary>
    public static bool TryParse(ReadOnlySpan<byte> body, bool push, int maxKeys, [NotNullWhen(true)] out JsonRows? rows, out ProtocolError error)
    {
        rows = null;
        KvJson? json;
        try
        {
            json = JsonSerializer.Deserialize(body, ProtocolJson.Default.KvJson);
        }
        catch (JsonException e)
        {
            return Fail(out error, 400, ProblemCodes.BadFrame, $"The JSON body does not parse: {e.Message}");
        }
        if (json is null) return Fail(out error, 400, ProblemCodes.BadFrame, "The JSON body is null.");
        if (json.Keys is not null && json.First is not null)
            return Fail(out error, 400, ProblemCodes.BadFrame, "Give either \"keys\" or \"first\", not both.");
        if (json.Keys is null && json.First is null)
            return Fail(out error, 400, ProblemCodes.BadFrame, "Give \"keys\": [...] or a dense range \"first\" (with \"count\" on a pull).");

        int count;
        if (push)
        {
            if (json.Values is null) return Fail(out error, 400, ProblemCodes.BadFrame, "A push needs \"values\": one array of dim floats per key.");
            count = json.Values.Length;
            if (json.Keys is not null && json.Keys.Length != count)
                return Fail(out error, 400, ProblemCodes.BadFrame, $"{json.Keys.Length} keys but {count} value rows; give one row per key.");
        }
        else
        {
            if (json.Values is not null) return Fail(out error, 400, ProblemCodes.BadFrame, "A pull request carries no \"values\".");
            if (json.Keys is not null) count = json.Keys.Length;
            else if (json.Count is { } c && c >= 0) count = c;
            else return Fail(out error, 400, ProblemCodes.BadFrame, "A range pull needs \"count\" ≥ 0 beside \"first\".");
        }
        if (count > maxKeys)
            return Fail(out error, 413, ProblemCodes.TooManyKeys, $"The request has {count} rows; this server accepts at most {maxKeys} per request.");
        if (json.Keys is not null && !KvBlock.CheckAscending(json.Keys, out error)) return false;
        ulong first = json.First ?? 0;
        if (json.First is not null && count > 0 && first > ulong.MaxValue - (ulong)(count - 1))
            return Fail(out error, 400, ProblemCodes.KeyOutOfRange, $"The range {first} + {count} rows runs past 2^64-1.");

        int dim = 0;
        float[]? flat = null;
        if (push && count > 0)
        {
            dim = json.Values![0]?.Length ?? 0;
            if (dim == 0) return Fail(out error, 400, ProblemCodes.DimMismatch, "Value rows must not be empty or null.");
            flat = ArrayPool<float>.Shared.Rent(checked(count * dim));
            for (int i = 0; i < count; i++)
            {
                var row = json.Values[i];
                if (row is null || row.Length != dim)
                {
                    ArrayPool<float>.Shared.Return(flat);
                    return Fail(out error, 400, ProblemCodes.DimMismatch, $"Value row {i} has {row?.Length ?? 0} floats; row 0 has {dim}. All rows need the table's dim.");
                }
                row.CopyTo(flat.AsSpan(i * dim));
            }
        }
        rows = new JsonRows { IsRange = json.Keys is null, First = first, Keys = json.Keys ?? [], Count = count, Dim = dim, _values = flat };
        error = default;
        return true;
    }

    /// <summary>
    /// The rows as a KV block (with VALUES for a push), in a pooled buffer the caller disposes: the data plane
    /// checks and applies one format only. One copy of the keys and values, small beside the JSON parse.
    /// </summary>
    public PooledBuffer ToBlock()
    {
        bool values = Dim > 0;
        int size = checked((int)KvBlockWriter.SizeOf(IsRange, Count, Dim, values));
        var block = new PooledBuffer(size) { Length = size };
        if (IsRange) KvBlockWriter.WriteRange(block.Span, First, Count, Values, Dim, values);
        else KvBlockWriter.Write(block.Span, Keys, Values, Dim, values);
        return block;
    }

    /// <summary>Writes a JSON pull reply with the request's key layout: <c>{"keys":[…],"values":[[…],…]}</c> or <c>{"first":f,"values":…}</c>.</summary>
    public static void WriteReply(IBufferWriter<byte> output, bool range, ulong first, ReadOnlySpan<ulong> keys, int count, ReadOnlySpan<float> values, int dim)
    {
        using var writer = new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true });
        writer.WriteStartObject();
        if (range)
        {
            writer.WriteNumber("first"u8, first);
        }
        else
        {
            writer.WriteStartArray("keys"u8);
            foreach (ulong key in keys) writer.WriteNumberValue(key);
            writer.WriteEndArray();
        }
        writer.WriteStartArray("values"u8);
        for (int i = 0; i < count; i++)
        {
            writer.WriteStartArray();
            foreach (float v in values.Slice(i * dim, dim))
            {
                // JSON has no NaN or ±Infinity; a row that holds one (pushed as binary) reads as the string "NaN" etc.
                if (float.IsFinite(v)) writer.WriteNumberValue(v);
                else writer.WriteStringValue(float.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
            }
            writer.WriteEndArray();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        var values = Interlocked.Exchange(ref _values, null);
        if (values is not null) ArrayPool<float>.Shared.Return(values);
    }

    private static bool Fail(out ProtocolError error, int status, string code, string detail)
    {
        error = new ProtocolError(status, code, detail);
        return false;
    }
}
