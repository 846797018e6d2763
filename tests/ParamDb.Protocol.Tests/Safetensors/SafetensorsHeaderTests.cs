using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ParamDb.Protocol.Safetensors;

namespace ParamDb.Protocol.Tests.Safetensors;

/// <summary>The export prefix written by <see cref="SafetensorsHeader.Create"/> and read back by TryParse.</summary>
public sealed class SafetensorsHeaderTests
{
    private static TableSchema Schema(string json) =>
        JsonSerializer.Deserialize(json, ProtocolJson.Default.TableSchema) ?? throw new InvalidOperationException("null schema");

    public static TheoryData<string, string, long> Exports => new()
    {
        { "t", """{"dim":2}""", 3 },
        { "empty", """{"dim":8}""", 0 },
        { "emb.v2", """{"dim":64,"init":{"kind":"normal","std":0.01,"seed":7},"updater":{"kind":"adam","lr":0.001},"maxKey":1000000}""", 1_000_000 },
        { "wide", """{"dim":65536,"init":{"kind":"constant","value":-1.5e-7}}""", 17 },
        { new string('n', TableNames.MaxLength), """{"dim":1,"updater":{"kind":"adagrad","lr":0.05}}""", 1L << 40 },
    };

    [Theory]
    [MemberData(nameof(Exports))]
    public void CreatedHeaderParsesBackToTheSameExport(string table, string schemaJson, long count)
    {
        var written = SafetensorsHeader.Create(table, Schema(schemaJson), count);

        // Only the prefix is at hand, as when an import has buffered 8 + N bytes of a body of known length.
        Assert.True(SafetensorsHeader.TryParse(written.Prefix.Span, written.FileLength, out var read, out var error), error.Detail);

        Assert.Equal(count, read.Count);
        Assert.Equal(written.Dim, read.Dim);
        Assert.Equal(table, read.Table);
        Assert.Equal(written.Schema, read.Schema);
        Assert.True(Schema(schemaJson).TryNormalize(out var normalized, out _));
        Assert.Equal(normalized, read.Schema);
        Assert.Equal(written.Prefix.ToArray(), read.Prefix.ToArray());
        Assert.Equal(written.KeysOffset, read.KeysOffset);
        Assert.Equal(written.ValuesOffset, read.ValuesOffset);
        Assert.Equal(written.FileLength, read.FileLength);
        Assert.Equal(written.PrefixLength + 8 * count + 4 * count * normalized.Dim, written.FileLength);
    }

    [Fact]
    public void DataStartsEightByteAlignedWhateverTheNameLength()
    {
        // Names of 1…16 characters move the JSON's length through every remainder mod 8.
        var remainders = new HashSet<int>();
        for (int length = 1; length <= 16; length++)
        {
            var header = SafetensorsHeader.Create(new string('a', length), new TableSchema { Dim = 3 }, 5);
            string json = Encoding.UTF8.GetString(header.Prefix.Span[8..]);
            remainders.Add(json.TrimEnd(' ').Length % 8);

            Assert.Equal(0, header.KeysOffset % 8);
            Assert.Equal(0, header.ValuesOffset % 8);
            Assert.Equal((ulong)header.HeaderLength, BinaryPrimitives.ReadUInt64LittleEndian(header.Prefix.Span));
            Assert.InRange(json.Length - json.TrimEnd(' ').Length, 0, 7);
            Assert.EndsWith("}", json.TrimEnd(' '));
        }
        Assert.Equal(8, remainders.Count);
    }

    [Fact]
    public void HeaderIsTheJsonAnyReaderExpects()
    {
        var header = SafetensorsHeader.Create("emb", Schema("""{"dim":4,"maxKey":100}"""), 10);

        using var doc = JsonDocument.Parse(header.Prefix[8..]);
        var root = doc.RootElement;

        Assert.Equal(["__metadata__", "keys", "values"], root.EnumerateObject().Select(p => p.Name));
        var meta = root.GetProperty("__metadata__");
        Assert.Equal("1", meta.GetProperty("paramdb.format").GetString());
        Assert.Equal("emb", meta.GetProperty("paramdb.table").GetString());
        Assert.Equal(JsonSerializer.Serialize(header.Schema, ProtocolJson.Default.TableSchema), meta.GetProperty("paramdb.schema").GetString());
        Assert.Equal("U64", root.GetProperty("keys").GetProperty("dtype").GetString());
        Assert.Equal([10], root.GetProperty("keys").GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal([0, 80], root.GetProperty("keys").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal("F32", root.GetProperty("values").GetProperty("dtype").GetString());
        Assert.Equal([10, 4], root.GetProperty("values").GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal([80, 240], root.GetProperty("values").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
    }

    [Fact]
    public void SchemaIsStoredNormalized()
    {
        var header = SafetensorsHeader.Create("t", Schema("""{"dim":2,"updater":{"kind":"adam","lr":0.01}}"""), 1);

        Assert.Equal(0.9, header.Schema.Updater!.Beta1);
        Assert.Contains("\\\"beta1\\\":0.9", Encoding.UTF8.GetString(header.Prefix.Span));
    }

    [Fact]
    public void BothWriteOverloadsWriteThePrefix()
    {
        var header = SafetensorsHeader.Create("t", new TableSchema { Dim = 2 }, 3);
        var span = new byte[header.PrefixLength + 5];
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write("ab"u8);

        int written = header.Write(span);
        header.Write(buffer);

        Assert.Equal(header.PrefixLength, written);
        Assert.Equal(header.Prefix.ToArray(), span[..written]);
        Assert.Equal(new byte[5], span[written..]);
        Assert.Equal([.. "ab"u8, .. header.Prefix.Span], buffer.WrittenSpan.ToArray());
        Assert.Throws<ArgumentException>(() => header.Write(new byte[header.PrefixLength - 1]));
    }

    [Fact]
    public void CreateRefusesWhatCannotBeExported()
    {
        var schema = new TableSchema { Dim = 2 };

        Assert.Throws<ArgumentException>(() => SafetensorsHeader.Create("a/b", schema, 1));
        Assert.Throws<ArgumentException>(() => SafetensorsHeader.Create("", schema, 1));
        Assert.Throws<ArgumentException>(() => SafetensorsHeader.Create("t", new TableSchema { Dim = 0 }, 1));
        Assert.Throws<ArgumentException>(() => SafetensorsHeader.Create("t", schema with { Updater = new UpdaterSpec { Kind = "sgd" } }, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SafetensorsHeader.Create("t", schema, -1));
        Assert.Throws<ArgumentException>(() => SafetensorsHeader.Create("t", new TableSchema { Dim = TableSchema.MaxDim }, long.MaxValue / 8));
    }

    [Fact]
    public void LargestExportFitsInALong()
    {
        // n × (8 + 4·65,536) bytes just under 2^63 still gives exact offsets.
        long count = (long.MaxValue - 8 - SafetensorsHeader.MaxHeaderLength) / (8 + 4L * TableSchema.MaxDim);
        var header = SafetensorsHeader.Create("t", new TableSchema { Dim = TableSchema.MaxDim }, count);

        Assert.True(SafetensorsHeader.TryParse(header.Prefix.Span, header.FileLength, out var read, out var error), error.Detail);

        Assert.Equal(count, read.Count);
        Assert.Equal(header.PrefixLength + count * (8 + 4L * TableSchema.MaxDim), read.FileLength);
    }
}
