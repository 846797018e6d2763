using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ParamDb.Protocol.Safetensors;

/// <summary>
/// The prefix of a table export (docs/export.md): a safetensors file (https://github.com/huggingface/safetensors)
/// with exactly two tensors, <c>keys</c> U64 [n] and <c>values</c> F32 [n, dim], and the table's schema in
/// <c>__metadata__</c>. All integers little-endian.
/// <code>
/// offset          size        field
/// 0               8           N: u64 length of the header
/// 8               N           header: UTF-8 JSON, padded with spaces to a multiple of 8
/// 8+N             8·n         keys:   n × u64, strictly ascending
/// 8+N+8·n         4·n·dim     values: n × dim × float32, row-major
/// </code>
/// The header, as <see cref="Create"/> writes it (one line; the reference writer's order, metadata first):
/// <code>
/// {"__metadata__":{"paramdb.format":"1","paramdb.schema":"{\"dim\":2,…}","paramdb.table":"emb"},
///  "keys":{"dtype":"U64","shape":[n],"data_offsets":[0,8n]},
///  "values":{"dtype":"F32","shape":[n,dim],"data_offsets":[8n,8n+4·n·dim]}}
/// </code>
/// Offsets in the header are relative to the data (byte 8+N); the properties here are absolute in the file.
/// N is a multiple of 8, so both sections start 8-byte aligned and NumPy maps them in place.
/// This type holds only the prefix: an export streams the two sections after it in constant memory, and an
/// import checks them as they arrive (<see cref="SafetensorsKeyChecker"/>).
/// </summary>
public sealed partial class SafetensorsHeader
{
    /// <summary>Bytes of the header-length field that starts the file.</summary>
    public const int LengthFieldSize = 8;

    /// <summary>
    /// Largest accepted header, in bytes: the reference implementation's limit (100,000,000). Ours are a few
    /// hundred bytes; the limit only bounds what an import buffers before it knows what it reads.
    /// </summary>
    public const int MaxHeaderLength = 100_000_000;

    /// <summary>Alignment of the data, in bytes: the header is padded with spaces to it.</summary>
    public const int Alignment = 8;

    /// <summary>Name of the keys tensor, U64 [n].</summary>
    public const string KeysTensor = "keys";

    /// <summary>Name of the values tensor, F32 [n, dim].</summary>
    public const string ValuesTensor = "values";

    /// <summary>The header entry that holds the string → string metadata, not a tensor.</summary>
    public const string MetadataEntry = "__metadata__";

    /// <summary>Metadata key of the export format version; the value is <see cref="FormatVersion"/>.</summary>
    public const string FormatKey = "paramdb.format";

    /// <summary>Metadata key of the table schema, serialized as the server serializes it (<see cref="ProtocolJson"/>).</summary>
    public const string SchemaKey = "paramdb.schema";

    /// <summary>Metadata key of the exported table's name; an import names its target itself, so it is informative.</summary>
    public const string TableKey = "paramdb.table";

    /// <summary>The only export format version this code writes and reads.</summary>
    public const string FormatVersion = "1";

    // The reference writer (serde_json) escapes only '"', '\' and control characters; the relaxed encoder
    // writes the same bytes for everything a schema and a table name contain, where the default one would
    // write \u0022 for every quote of the nested schema JSON.
    private static readonly JsonWriterOptions HeaderJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly byte[] _prefix;

    private SafetensorsHeader(byte[] prefix, long count, int dim, TableSchema schema, string? table)
    {
        _prefix = prefix;
        Count = count;
        Dim = dim;
        Schema = schema;
        Table = table;
    }

    /// <summary>Rows: the n of both tensors.</summary>
    public long Count { get; }

    /// <summary>Floats per row: the second dimension of <c>values</c>, equal to <see cref="Schema"/>'s dim.</summary>
    public int Dim { get; }

    /// <summary>The table schema from the metadata, normalized (every default filled in).</summary>
    public TableSchema Schema { get; }

    /// <summary>The exported table's name from the metadata; null when a parsed file has none.</summary>
    public string? Table { get; }

    /// <summary>N: bytes of the JSON header including its padding; a multiple of 8 in files this type writes.</summary>
    public int HeaderLength => _prefix.Length - LengthFieldSize;

    /// <summary>Bytes before the data: the length field and the header, 8 + N.</summary>
    public int PrefixLength => _prefix.Length;

    /// <summary>The prefix bytes: the length field and the header, as written or as parsed.</summary>
    public ReadOnlyMemory<byte> Prefix => _prefix;

    /// <summary>Offset of the keys section in the file (= <see cref="PrefixLength"/>).</summary>
    public long KeysOffset => PrefixLength;

    /// <summary>Bytes of the keys section, 8·n.</summary>
    public long KeysLength => 8 * Count;

    /// <summary>Offset of the values section in the file, right after the keys.</summary>
    public long ValuesOffset => KeysOffset + KeysLength;

    /// <summary>Bytes of the values section, 4·n·dim.</summary>
    public long ValuesLength => 4 * Count * Dim;

    /// <summary>Length of the whole file, in bytes.</summary>
    public long FileLength => ValuesOffset + ValuesLength;

    /// <summary>
    /// Builds the prefix of the export of <paramref name="count"/> rows of <paramref name="table"/>. The schema
    /// is normalized first, so the file carries the same JSON the server answers for the table.
    /// </summary>
    /// <param name="table">The table's name; must be a valid table name.</param>
    /// <param name="schema">The table's schema; its dim is the values' second dimension.</param>
    /// <param name="count">Rows that will follow, 0 or more.</param>
    /// <exception cref="ArgumentException">The name or schema is not valid, or the file would exceed 2^63 bytes.</exception>
    public static SafetensorsHeader Create(string table, TableSchema schema, long count)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(schema);
        if (!TableNames.IsValid(table))
            throw new ArgumentException($"\"{table}\" is not a valid table name.", nameof(table));
        if (!schema.TryNormalize(out var normalized, out var error))
            throw new ArgumentException(error.Detail, nameof(schema));
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        int dim = normalized.Dim;
        // 8 + N + 8n + 4·n·dim must fit in a long: n < 2^63 / (8 + 4·65,536) is checked here so every
        // offset property is plain arithmetic afterwards.
        long keysEnd, valuesEnd;
        try
        {
            keysEnd = checked(8 * count);
            valuesEnd = checked(keysEnd + 4 * count * dim);
            _ = checked(valuesEnd + MaxHeaderLength + LengthFieldSize);
        }
        catch (OverflowException)
        {
            throw new ArgumentException($"{count} rows of dim {dim} do not fit in one file.", nameof(count));
        }

        var json = new ArrayBufferWriter<byte>(256 + table.Length);
        using (var writer = new Utf8JsonWriter(json, HeaderJson))
        {
            writer.WriteStartObject();
            writer.WriteStartObject(MetadataEntry);
            writer.WriteString(FormatKey, FormatVersion);
            writer.WriteString(SchemaKey, JsonSerializer.Serialize(normalized, ProtocolJson.Default.TableSchema));
            writer.WriteString(TableKey, table);
            writer.WriteEndObject();
            WriteTensor(writer, KeysTensor, "U64", count, -1, 0, keysEnd);
            WriteTensor(writer, ValuesTensor, "F32", count, dim, keysEnd, valuesEnd);
            writer.WriteEndObject();
        }

        // Pad with spaces (JSON whitespace) so 8 + N, where the data starts, is a multiple of 8; the reference
        // writer pads the same way.
        int headerLength = (json.WrittenCount + Alignment - 1) / Alignment * Alignment;
        var prefix = new byte[LengthFieldSize + headerLength];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)headerLength);
        json.WrittenSpan.CopyTo(prefix.AsSpan(LengthFieldSize));
        prefix.AsSpan(LengthFieldSize + json.WrittenCount).Fill((byte)' ');
        return new SafetensorsHeader(prefix, count, dim, normalized, table);
    }

    /// <summary>Writes the prefix (<see cref="PrefixLength"/> bytes) and returns its length.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than the prefix.</exception>
    public int Write(Span<byte> destination)
    {
        if (destination.Length < _prefix.Length)
            throw new ArgumentException($"The prefix needs {_prefix.Length} bytes; the destination has {destination.Length}.", nameof(destination));
        _prefix.CopyTo(destination);
        return _prefix.Length;
    }

    /// <summary>Writes the prefix (<see cref="PrefixLength"/> bytes) to <paramref name="writer"/> and advances it.</summary>
    public void Write(IBufferWriter<byte> writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _prefix.CopyTo(writer.GetSpan(_prefix.Length));
        writer.Advance(_prefix.Length);
    }

    private static void WriteTensor(Utf8JsonWriter writer, string name, string dtype, long count, int dim, long begin, long end)
    {
        writer.WriteStartObject(name);
        writer.WriteString("dtype", dtype);
        writer.WriteStartArray("shape");
        writer.WriteNumberValue(count);
        if (dim >= 0) writer.WriteNumberValue(dim);
        writer.WriteEndArray();
        writer.WriteStartArray("data_offsets");
        writer.WriteNumberValue(begin);
        writer.WriteNumberValue(end);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
