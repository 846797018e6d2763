using System.Runtime.InteropServices;
using System.Text;
using ParamDb.Protocol.Safetensors;
using static ParamDb.Protocol.Tests.Safetensors.SafetensorsFiles;

namespace ParamDb.Protocol.Tests.Safetensors;

/// <summary>
/// Golden bytes of a table export (docs/export.md), written out by hand from the safetensors format, not produced
/// by the writer: keys [1, 2, 5] as uint64 and values [[1, 2], [-0.5, 0.25], [0, 3]] as float32, which is what
/// <c>safetensors.numpy.save_file({"keys": k, "values": v}, path, metadata)</c> writes: compact JSON, metadata
/// first, then the tensors by descending dtype alignment (U64 before F32), the header padded with spaces to a
/// multiple of 8. (The reference writer keeps metadata in a hash map, so its entry order may differ; the
/// format does not care.) Readers elsewhere are checked against the same bytes: these cases only grow.
/// </summary>
public sealed class SafetensorsGoldenTests
{
    // N = 272: 270 bytes of JSON and 2 spaces, so the data starts at 280 = 35 × 8.
    private const string LengthField = "10 01 00 00 00 00 00 00";

    private const string HeaderJson =
        """{"__metadata__":{"paramdb.format":"1","paramdb.schema":"{\"dim\":2,\"init\":{\"kind\":\"zeros\"},\"updater\":{\"kind\":\"add\"}}","paramdb.table":"t"},"keys":{"dtype":"U64","shape":[3],"data_offsets":[0,24]},"values":{"dtype":"F32","shape":[3,2],"data_offsets":[24,48]}}""";

    private const string Padding = "  ";

    private const string KeysBytes =
        "01 00 00 00 00 00 00 00" + // 1
        "02 00 00 00 00 00 00 00" + // 2
        "05 00 00 00 00 00 00 00";  // 5

    private const string ValuesBytes =
        "00 00 80 3F" + "00 00 00 40" + // 1.0f, 2.0f
        "00 00 00 BF" + "00 00 80 3E" + // -0.5f, 0.25f
        "00 00 00 00" + "00 00 40 40";  // 0.0f, 3.0f

    // The same tensors saved with no metadata: N = 120, already a multiple of 8, so no padding.
    private const string PlainLengthField = "78 00 00 00 00 00 00 00";

    private const string PlainHeaderJson =
        """{"keys":{"dtype":"U64","shape":[3],"data_offsets":[0,24]},"values":{"dtype":"F32","shape":[3,2],"data_offsets":[24,48]}}""";

    private static byte[] Golden() =>
        [.. Hex(LengthField), .. Encoding.UTF8.GetBytes(HeaderJson + Padding), .. Hex(KeysBytes), .. Hex(ValuesBytes)];

    [Fact]
    public void GoldenPiecesAddUpToTheDocumentedLayout()
    {
        Assert.Equal(270, Encoding.UTF8.GetByteCount(HeaderJson));
        Assert.Equal(8 + 272 + 24 + 24, Golden().Length);
        Assert.Equal(120, Encoding.UTF8.GetByteCount(PlainHeaderJson));
    }

    [Fact]
    public void WriterProducesTheGoldenPrefix()
    {
        var header = SafetensorsHeader.Create("t", new TableSchema { Dim = 2 }, count: 3);

        Assert.Equal([.. Hex(LengthField), .. Encoding.UTF8.GetBytes(HeaderJson + Padding)], header.Prefix.ToArray());
        Assert.Equal(272, header.HeaderLength);
        Assert.Equal(280, header.KeysOffset);
        Assert.Equal(304, header.ValuesOffset);
        Assert.Equal(328, header.FileLength);
    }

    [Fact]
    public void WriterPrefixAndStreamedSectionsMakeTheGoldenFile()
    {
        var header = SafetensorsHeader.Create("t", new TableSchema { Dim = 2 }, count: 3);
        var file = new byte[header.FileLength];

        int written = header.Write(file);
        MemoryMarshal.AsBytes<ulong>([1, 2, 5]).CopyTo(file.AsSpan((int)header.KeysOffset));
        MemoryMarshal.AsBytes<float>([1f, 2f, -0.5f, 0.25f, 0f, 3f]).CopyTo(file.AsSpan((int)header.ValuesOffset));

        Assert.Equal(header.PrefixLength, written);
        Assert.Equal(Golden(), file);
    }

    [Fact]
    public void GoldenFileParsesToItsTableAndSections()
    {
        byte[] file = Golden();

        Assert.True(SafetensorsHeader.TryParse(file, file.Length, out var header, out var error), error.Detail);

        Assert.True(error.IsNone);
        Assert.Equal(3, header.Count);
        Assert.Equal(2, header.Dim);
        Assert.Equal("t", header.Table);
        Assert.Equal(new TableSchema { Dim = 2, Init = new() { Kind = "zeros" }, Updater = new() { Kind = "add" } }, header.Schema);
        Assert.Equal(file.AsSpan(0, 280).ToArray(), header.Prefix.ToArray());
        Assert.Equal<ulong>([1, 2, 5], MemoryMarshal.Cast<byte, ulong>(file.AsSpan((int)header.KeysOffset, (int)header.KeysLength)).ToArray());
        Assert.Equal([1f, 2f, -0.5f, 0.25f, 0f, 3f], MemoryMarshal.Cast<byte, float>(file.AsSpan((int)header.ValuesOffset, (int)header.ValuesLength)).ToArray());
        Assert.Equal(file.Length, header.FileLength);
    }

    [Fact]
    public void HeaderLengthIsReadFromTheFirstEightBytesAlone()
    {
        byte[] file = Golden();

        Assert.True(SafetensorsHeader.TryReadHeaderLength(file.AsSpan(0, 8), file.Length, out int n, out var error), error.Detail);

        Assert.Equal(272, n);
        Assert.True(SafetensorsHeader.TryParse(file.AsSpan(0, 8 + n), file.Length, out var header, out error), error.Detail);
        Assert.Equal(3, header.Count);
    }

    [Fact]
    public void ReferenceFileWithoutMetadataIsRefusedOnlyForItsMissingSchema()
    {
        byte[] file = [.. Hex(PlainLengthField), .. Encoding.UTF8.GetBytes(PlainHeaderJson), .. Hex(KeysBytes), .. Hex(ValuesBytes)];

        Assert.False(SafetensorsHeader.TryParse(file, file.Length, out _, out var error));

        Assert.Equal(ProblemCodes.BadSafetensors, error.Code);
        Assert.StartsWith("The header has no __metadata__", error.Detail);
    }

    public static TheoryData<string, string> EntryOrders => new()
    {
        { "metadata, keys, values (the reference writer's)", Header(Meta, Keys, Values) },
        { "values before keys", Header(Meta, Values, Keys) },
        { "metadata between the tensors", Header(Keys, Meta, Values) },
        { "metadata last, values first", Header(Values, Keys, Meta) },
        { "fields of a tensor in another order", Header(Meta, J("'keys':{'data_offsets':[0,24],'shape':[3],'dtype':'U64'}"), Values) },
        { "metadata entries reordered, others added", Header(MetaWith(@"'format':'np','paramdb.table':'t','paramdb.schema':'{\'dim\':2}','paramdb.format':'1','note':''"), Keys, Values) },
        { "pretty-printed with escaped names", "{\n  " + Meta + ",\n  \"k\\u0065ys\": {\"dtype\": \"U64\", \"shape\": [3], \"data_offsets\": [0, 24]},\n  " + Values + "\n}" },
    };

    [Theory]
    [MemberData(nameof(EntryOrders))]
    public void EntryOrderDoesNotMatter(string name, string json)
    {
        byte[] file = Build(json, Data);

        Assert.True(SafetensorsHeader.TryParse(file, file.Length, out var header, out var error), $"{name}: {error.Detail}");

        Assert.Equal(3, header.Count);
        Assert.Equal(2, header.Dim);
        Assert.Equal("t", header.Table);
        Assert.Equal(2, header.Schema.Dim);
        Assert.Equal(file.Length - 48, header.KeysOffset);
    }

    [Fact]
    public void UnpaddedHeaderIsAcceptedThoughTheDataIsUnaligned()
    {
        // Older writers did not pad; the format does not require it, so an import reads such files too.
        string json = Header(Meta, Keys, Values);
        Assert.NotEqual(0, Encoding.UTF8.GetByteCount(json) % 8);
        byte[] file = Build(json, Data, pad: false);

        Assert.True(SafetensorsHeader.TryParse(file, file.Length, out var header, out var error), error.Detail);

        Assert.Equal(8 + Encoding.UTF8.GetByteCount(json), header.KeysOffset);
    }

    [Fact]
    public void TableNameIsOptional()
    {
        byte[] file = Build(Header(MetaWith(@"'paramdb.format':'1','paramdb.schema':'{\'dim\':2}'"), Keys, Values), Data);

        Assert.True(SafetensorsHeader.TryParse(file, file.Length, out var header, out var error), error.Detail);

        Assert.Null(header.Table);
    }
}
