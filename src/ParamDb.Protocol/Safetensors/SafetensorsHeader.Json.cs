using System.Text.Json;

namespace ParamDb.Protocol.Safetensors;

public sealed partial class SafetensorsHeader
{
    // One tensor entry as read: {"dtype":…,"shape":[…],"data_offsets":[begin,end]}. The dtype is checked as it
    // is read; the shape keeps its first two dimensions and its rank.
    private struct TensorFields
    {
        public bool Seen;
        public int Rank;
        public ulong Shape0, Shape1, Begin, End;
    }

    private struct HeaderFields
    {
        public TensorFields Keys, Values;
        public bool MetadataSeen;
        public string? Format, SchemaJson, Table;
    }

    // Reads the top-level object with a forward-only reader, so a header costs no DOM: the fields above plus
    // the three metadata strings we use. Malformed JSON throws JsonException, which TryParse reports.
    private static bool ReadHeader(ref Utf8JsonReader reader, out HeaderFields f, out ProtocolError error)
    {
        f = default;
        if (!reader.Read())
            return Bad(out error, "The header holds no JSON, only whitespace.");
        if (reader.TokenType != JsonTokenType.StartObject)
            return Bad(out error, $"The header must be a JSON object; it is {Describe(ref reader)}.");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("keys"u8))
            {
                if (f.Keys.Seen) return Bad(out error, "The header names tensor \"keys\" twice.");
                reader.Read();
                if (!ReadTensor(ref reader, KeysTensor, "U64"u8, "U64 (NumPy: uint64)", ref f.Keys, out error)) return false;
            }
            else if (reader.ValueTextEquals("values"u8))
            {
                if (f.Values.Seen) return Bad(out error, "The header names tensor \"values\" twice.");
                reader.Read();
                if (!ReadTensor(ref reader, ValuesTensor, "F32"u8, "F32 (NumPy: float32)", ref f.Values, out error)) return false;
            }
            else if (reader.ValueTextEquals("__metadata__"u8))
            {
                if (f.MetadataSeen) return Bad(out error, $"The header has {MetadataEntry} twice.");
                f.MetadataSeen = true;
                reader.Read();
                if (!ReadMetadata(ref reader, ref f, out error)) return false;
            }
            else
            {
                return Bad(out error, $"The header holds a tensor {Describe(ref reader)}; an export holds exactly two, \"keys\" and \"values\".");
            }
        }
        // The reader stops at the closing brace; anything but whitespace after it throws.
        if (reader.Read())
            return Bad(out error, "The header has more JSON after its object.");
        error = default;
        return true;
    }

    private static bool ReadTensor(ref Utf8JsonReader reader, string name, ReadOnlySpan<byte> dtype, string dtypeName, ref TensorFields t, out ProtocolError error)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            return Bad(out error, $"Tensor \"{name}\" must be an object with dtype, shape and data_offsets; it is {Describe(ref reader)}.");
        bool hasDtype = false, hasShape = false, hasOffsets = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("dtype"u8))
            {
                if (hasDtype) return Bad(out error, $"Tensor \"{name}\" has dtype twice.");
                hasDtype = true;
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals(dtype))
                    return Bad(out error, $"Tensor \"{name}\" has dtype {Describe(ref reader)}; it must be {dtypeName}.");
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                if (hasShape) return Bad(out error, $"Tensor \"{name}\" has shape twice.");
                hasShape = true;
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                    return Bad(out error, $"Tensor \"{name}\" has shape {Describe(ref reader)}; it must be an array of sizes.");
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (!ReadSize(ref reader, name, "shape", out ulong size, out error)) return false;
                    if (t.Rank == 0) t.Shape0 = size;
                    else if (t.Rank == 1) t.Shape1 = size;
                    t.Rank++;
                }
            }
            else if (reader.ValueTextEquals("data_offsets"u8))
            {
                if (hasOffsets) return Bad(out error, $"Tensor \"{name}\" has data_offsets twice.");
                hasOffsets = true;
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                    return Bad(out error, $"Tensor \"{name}\" has data_offsets {Describe(ref reader)}; it must be [begin, end].");
                int count = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (!ReadSize(ref reader, name, "data_offsets", out ulong offset, out error)) return false;
                    if (count == 0) t.Begin = offset;
                    else if (count == 1) t.End = offset;
                    count++;
                }
                if (count != 2)
                    return Bad(out error, $"Tensor \"{name}\" has {count} data_offsets; it must have two: [begin, end].");
            }
            else
            {
                return Bad(out error, $"Tensor \"{name}\" has an unknown field {Describe(ref reader)}; a tensor has dtype, shape and data_offsets.");
            }
        }
        if (!hasDtype) return Bad(out error, $"Tensor \"{name}\" has no dtype.");
        if (!hasShape) return Bad(out error, $"Tensor \"{name}\" has no shape.");
        if (!hasOffsets) return Bad(out error, $"Tensor \"{name}\" has no data_offsets.");
        t.Seen = true;
        error = default;
        return true;
    }

    private static bool ReadSize(ref Utf8JsonReader reader, string name, string field, out ulong value, out ProtocolError error)
    {
        // TryGetUInt64 refuses fractions, exponents and signs, as the reference reader's usize does.
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetUInt64(out value))
        {
            error = default;
            return true;
        }
        value = 0;
        return Bad(out error, $"Tensor \"{name}\" has {Describe(ref reader)} in its {field}; entries must be integers from 0 to 2^64-1.");
    }

    private static bool ReadMetadata(ref Utf8JsonReader reader, ref HeaderFields f, out ProtocolError error)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            return Bad(out error, $"{MetadataEntry} must be an object of strings; it is {Describe(ref reader)}.");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString() ?? "";
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
                return Bad(out error, $"{MetadataEntry}[{Quote(key)}] is {Describe(ref reader)}; metadata values must be strings.");
            bool ok = key switch
            {
                FormatKey => Take(ref reader, key, ref f.Format, out error),
                SchemaKey => Take(ref reader, key, ref f.SchemaJson, out error),
                TableKey => Take(ref reader, key, ref f.Table, out error),
                _ => Skip(out error), // other producers' metadata ("format": "np", …) is allowed and ignored
            };
            if (!ok) return false;
        }
        error = default;
        return true;
    }

    private static bool Take(ref Utf8JsonReader reader, string key, ref string? slot, out ProtocolError error)
    {
        if (slot is not null) return Bad(out error, $"{MetadataEntry} has \"{key}\" twice.");
        slot = reader.GetString();
        error = default;
        return true;
    }

    private static bool Skip(out ProtocolError error)
    {
        error = default;
        return true;
    }
}
