using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace ParamDb.Protocol.Safetensors;

public sealed partial class SafetensorsHeader
{
    // Longest piece of a file quoted back in a problem detail: a hostile header may hold a 100 MB name.
    private const int QuoteLimit = 64;

    /// <summary>
    /// Reads N, the header length, from the first 8 bytes: what an import reading a request body must buffer
    /// (8 + N bytes) before <see cref="TryParse"/>. Rejects N above <see cref="MaxHeaderLength"/>, N too small
    /// for a JSON object, and N past the end of the file.
    /// </summary>
    /// <param name="prefix">At least the first 8 bytes of the file.</param>
    /// <param name="fileLength">Length of the whole file (or request body), in bytes.</param>
    /// <param name="headerLength">N when true.</param>
    /// <param name="error">The rejection when false.</param>
    public static bool TryReadHeaderLength(ReadOnlySpan<byte> prefix, long fileLength, out int headerLength, out ProtocolError error)
    {
        headerLength = 0;
        if (fileLength < LengthFieldSize)
            return Fail(out error, 400, ProblemCodes.Truncated, $"A safetensors file starts with an 8-byte header length; the file has {fileLength} bytes.");
        if (prefix.Length < LengthFieldSize)
            return Fail(out error, 400, ProblemCodes.Truncated, $"The header length is the first 8 bytes; got {prefix.Length}.");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderLength)
            return Fail(out error, 400, ProblemCodes.BadSafetensors, $"The header length is {n} bytes, over the limit of {MaxHeaderLength}; is this a safetensors file?");
        if (n < 2)
            return Fail(out error, 400, ProblemCodes.BadSafetensors, $"The header length is {n} bytes, too short for a JSON object.");
        if ((long)n > fileLength - LengthFieldSize)
            return Fail(out error, 400, ProblemCodes.Truncated, $"The header length is {n} bytes, past the end of the {fileLength}-byte file.");
        headerLength = (int)n;
        error = default;
        return true;
    }

    /// <summary>
    /// Parses and validates the prefix of a table export: the header length, the JSON header, its two tensors
    /// and the schema metadata, and that the file is exactly as long as they say. Never throws for malformed
    /// input; the reason comes back in <paramref name="error"/>. The key and value bytes are not looked at:
    /// check the keys as they stream with <see cref="SafetensorsKeyChecker"/>.
    /// </summary>
    /// <param name="prefix">At least the first 8 + N bytes of the file (more is ignored); see <see cref="TryReadHeaderLength"/>.</param>
    /// <param name="fileLength">Length of the whole file, in bytes.</param>
    /// <param name="header">The parsed header when true; it holds a copy of the prefix bytes.</param>
    /// <param name="error">The rejection when false.</param>
    /// <remarks>
    /// The rules, beyond the format's own: exactly the tensors <c>keys</c> U64 [n] and <c>values</c> F32
    /// [n, dim] with 1 ≤ dim ≤ <see cref="TableSchema.MaxDim"/>; the keys' bytes first, so an import can check
    /// them before the values arrive (every reference writer puts them first: U64 sorts before F32 and "keys"
    /// before "values"); no duplicate or unknown entries; and metadata with <c>paramdb.format</c> "1" and a
    /// valid <c>paramdb.schema</c> of the same dim. Other metadata entries are allowed and ignored. Entries
    /// may come in any order.
    /// </remarks>
    public static bool TryParse(ReadOnlySpan<byte> prefix, long fileLength, [NotNullWhen(true)] out SafetensorsHeader? header, out ProtocolError error)
    {
        header = null;
        if (!TryReadHeaderLength(prefix, fileLength, out int headerLength, out error)) return false;
        if (prefix.Length < LengthFieldSize + headerLength)
            return Fail(out error, 400, ProblemCodes.Truncated, $"The header is {headerLength} bytes; only {prefix.Length - LengthFieldSize} were given.");
        var json = prefix.Slice(LengthFieldSize, headerLength);
        if (!Utf8.IsValid(json))
            return Bad(out error, "The header is not valid UTF-8.");

        HeaderFields fields;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
            if (!ReadHeader(ref reader, out fields, out error)) return false;
        }
        catch (JsonException e)
        {
            return Bad(out error, $"The header is not valid JSON: {e.Message}");
        }

        if (!CheckTensors(in fields, headerLength, fileLength, out int dim, out error)) return false;
        if (!CheckMetadata(in fields, dim, out var schema, out error)) return false;

        header = new SafetensorsHeader(prefix[..(LengthFieldSize + headerLength)].ToArray(), (long)fields.Keys.Shape0, dim, schema, fields.Table);
        return true;
    }

    private static bool CheckTensors(in HeaderFields f, int headerLength, long fileLength, out int dim, out ProtocolError error)
    {
        dim = 0;
        var keys = f.Keys;
        var values = f.Values;
        if (!keys.Seen)
            return Bad(out error, "The header has no tensor \"keys\"; an export holds keys (U64 [n]) and values (F32 [n, dim]).");
        if (!values.Seen)
            return Bad(out error, "The header has no tensor \"values\"; an export holds keys (U64 [n]) and values (F32 [n, dim]).");
        if (keys.Rank != 1)
            return Bad(out error, $"Tensor \"keys\" has rank {keys.Rank}; it must be one-dimensional: [n].");
        if (values.Rank != 2)
            return Bad(out error, $"Tensor \"values\" has rank {values.Rank}; it must be two-dimensional: [n, dim].");
        if (keys.Shape0 != values.Shape0)
            return Bad(out error, $"Tensor \"keys\" has {keys.Shape0} rows but \"values\" has {values.Shape0}; both must have n rows.");
        if (values.Shape1 is 0 or > TableSchema.MaxDim)
            return Bad(out error, $"Tensor \"values\" has dim {values.Shape1} (shape [{values.Shape0}, {values.Shape1}]); a table's dim is 1…{TableSchema.MaxDim}.");
        if (keys.End < keys.Begin)
            return Bad(out error, $"Tensor \"keys\" has data_offsets [{keys.Begin}, {keys.End}]: the end is before the start.");
        if (values.End < values.Begin)
            return Bad(out error, $"Tensor \"values\" has data_offsets [{values.Begin}, {values.End}]: the end is before the start.");
        if (keys.Begin != 0)
        {
            return values.Begin == 0
                ? Bad(out error, "The values' bytes come before the keys'; an export puts keys first (data_offsets [0, 8n]) so an import can check them before the values arrive.")
                : Bad(out error, $"Tensor \"keys\" starts at byte {keys.Begin} of the data; the data must start with it, at 0, with no hole.");
        }

        ulong n = keys.Shape0;
        // n < 2^64 and dim ≤ 2^16: the sizes fit in UInt128 exactly, so no product can wrap.
        UInt128 keysSize = (UInt128)n * 8, valuesSize = (UInt128)n * values.Shape1 * 4;
        if (keys.End - keys.Begin != keysSize)
            return Bad(out error, $"Tensor \"keys\" has data_offsets [{keys.Begin}, {keys.End}], {keys.End - keys.Begin} bytes; U64 [{n}] needs {keysSize}.");
        if (values.Begin > keys.End)
            return Bad(out error, $"A hole of {values.Begin - keys.End} bytes between \"keys\" (ends at {keys.End}) and \"values\" (starts at {values.Begin}); the data must be covered exactly.");
        if (values.Begin < keys.End)
            return Bad(out error, $"Tensors \"keys\" (ends at {keys.End}) and \"values\" (starts at {values.Begin}) overlap by {keys.End - values.Begin} bytes.");
        if (values.End - values.Begin != valuesSize)
            return Bad(out error, $"Tensor \"values\" has data_offsets [{values.Begin}, {values.End}], {values.End - values.Begin} bytes; F32 [{n}, {values.Shape1}] needs {valuesSize}.");

        UInt128 expected = (UInt128)LengthFieldSize + (uint)headerLength + values.End;
        if ((UInt128)fileLength < expected)
            return Fail(out error, 400, ProblemCodes.Truncated, $"The header promises {expected} bytes (8 + {headerLength} header + {values.End} data for {n} rows of dim {values.Shape1}); the file has {fileLength}.");
        if ((UInt128)fileLength > expected)
            return Fail(out error, 400, ProblemCodes.LengthMismatch, $"The header promises {expected} bytes (8 + {headerLength} header + {values.End} data for {n} rows of dim {values.Shape1}); the file has {fileLength}: {(UInt128)fileLength - expected} trailing bytes.");
        dim = (int)values.Shape1;
        error = default;
        return true;
    }

    private static bool CheckMetadata(in HeaderFields f, int dim, [NotNullWhen(true)] out TableSchema? schema, out ProtocolError error)
    {
        schema = null;
        if (!f.MetadataSeen)
            return Bad(out error, $"The header has no {MetadataEntry}; an export carries its table schema there, under \"{SchemaKey}\", with \"{FormatKey}\": \"{FormatVersion}\".");
        if (f.Format is null)
            return Bad(out error, $"{MetadataEntry} has no \"{FormatKey}\"; an export says \"{FormatKey}\": \"{FormatVersion}\".");
        if (f.Format != FormatVersion)
            return Bad(out error, $"{MetadataEntry}[\"{FormatKey}\"] is {Quote(f.Format)}; this server reads format {FormatVersion}.");
        if (f.SchemaJson is null)
            return Bad(out error, $"{MetadataEntry} has no \"{SchemaKey}\"; an export carries its table schema there, as JSON.");
        TableSchema? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize(f.SchemaJson, ProtocolJson.Default.TableSchema);
        }
        catch (JsonException e)
        {
            return Bad(out error, $"{MetadataEntry}[\"{SchemaKey}\"] is not a table schema: {e.Message}");
        }
        if (parsed is null)
            return Bad(out error, $"{MetadataEntry}[\"{SchemaKey}\"] is null; it must be a table schema.");
        if (!parsed.TryNormalize(out var normalized, out var invalid))
            return Bad(out error, $"{MetadataEntry}[\"{SchemaKey}\"] is not a valid schema: {invalid.Detail}");
        if (normalized.Dim != dim)
            return Bad(out error, $"{MetadataEntry}[\"{SchemaKey}\"] has dim {normalized.Dim} but tensor \"values\" has dim {dim}.");
        if (f.Table is not null && !TableNames.IsValid(f.Table))
            return Bad(out error, $"{MetadataEntry}[\"{TableKey}\"] is {Quote(f.Table)}, not a table name ([A-Za-z0-9_.-]{{1,{TableNames.MaxLength}}}).");
        schema = normalized;
        error = default;
        return true;
    }

    private static bool Fail(out ProtocolError error, int status, string code, string detail)
    {
        error = new ProtocolError(status, code, detail);
        return false;
    }

    private static bool Bad(out ProtocolError error, string detail) => Fail(out error, 400, ProblemCodes.BadSafetensors, detail);

    private static string Quote(string s) => s.Length <= QuoteLimit ? $"\"{s}\"" : $"\"{s[..QuoteLimit]}…\" ({s.Length} characters)";

    // What a JSON token is, for a detail: a string or number as written (cut short), else its kind.
    private static string Describe(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String or JsonTokenType.PropertyName => Quote(reader.GetString() ?? ""),
        JsonTokenType.Number => reader.ValueSpan.Length <= QuoteLimit ? Encoding.UTF8.GetString(reader.ValueSpan) : "a number of " + reader.ValueSpan.Length + " digits",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        JsonTokenType.Null => "null",
        _ => reader.TokenType.ToString(),
    };
}
