using System.Buffers.Binary;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using ParamDb.Protocol;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

public sealed class ImportApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    /// <summary>A table's catalog entry (schema, rows, bytes) and its whole export, or "404" when it does not exist.</summary>
    private async Task<string> StateAsync(string table)
    {
        using var info = await Http.GetAsync($"/v1/tables/{table}");
        if (!info.IsSuccessStatusCode) return ((int)info.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);   // a problem's traceId differs each time
        return await info.Content.ReadAsStringAsync() + Convert.ToHexString(await Http.GetByteArrayAsync($"/v1/tables/{table}/export"));
    }

    private string[] ImportFilesLeft()
    {
        string tmp = Path.Combine(fixture.Server.DataDirectory, "tmp");
        return Directory.Exists(tmp) ? Directory.GetFiles(tmp, "spool-*") : [];
    }

    [Fact]
    public async Task AnExportImportedAfterItsTableWasDeletedRecreatesTheSameTableAndRows()
    {
        var name = ServerFixture.NewTable("imp");
        await Wire.CreateTableAsync(Http, name, """{"dim":5,"init":{"kind":"constant","value":0.5},"updater":{"kind":"sgd","lr":0.1}}""");
        var rows = new PushedRows(3000, dim: 5, seed: 3);
        await rows.PushAsync(Http, name, rows.Keys);
        byte[] file = await Http.GetByteArrayAsync($"/v1/tables/{name}/export");
        var before = await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo);
        float[] pulled = await Wire.PullAsync(Http, name, rows.Keys);
        Assert.True((await Http.DeleteAsync($"/v1/tables/{name}")).IsSuccessStatusCode);

        var reply = await ImportFiles.ImportAsync(Http, name, file, 201);

        Assert.Equal(name, reply.Table);
        Assert.True(reply.Created);
        Assert.Equal(3000, reply.Rows);
        Assert.Equal(file.Length, reply.Bytes);
        Assert.Equal(0, reply.NonFiniteValues);
        Assert.Equal(before!.Schema, reply.Schema);
        Assert.Equal(before, await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo));
        Assert.Equal(pulled, await Wire.PullAsync(Http, name, rows.Keys));
        Assert.Equal(file, await Http.GetByteArrayAsync($"/v1/tables/{name}/export"));
        Assert.Empty(ImportFilesLeft());
    }

    [Fact]
    public async Task ImportingIntoAMissingTableCreatesItUnderTheNameInTheUrl()
    {
        var name = ServerFixture.NewTable("new");
        byte[] file = ImportFiles.Make([3, 9], metadata: """{"paramdb.format":"1","paramdb.schema":"{\"dim\":2,\"maxKey\":10}","paramdb.table":"elsewhere"}""");

        var reply = await ImportFiles.ImportAsync(Http, name, file, 201);

        var info = await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo);
        Assert.Equal(10UL, info!.Schema.MaxKey);
        Assert.Equal("add", info.Schema.Updater!.Kind);   // normalized: every default filled in
        Assert.Equal(info.Schema, reply.Schema);
        Assert.Equal(2, info.Rows);
        Assert.Equal(ImportFiles.ValuesOf(2), await Wire.PullAsync(Http, name, [3, 9]));
        await ImportFiles.AssertNoTableAsync(Http, "elsewhere");
    }

    [Fact]
    public async Task AnEmptyFileCreatesAnEmptyTable()
    {
        var name = ServerFixture.NewTable("empty");
        var reply = await ImportFiles.ImportAsync(Http, name, ImportFiles.Make([]), 201);
        Assert.Equal(0, reply.Rows);
        Assert.Equal(0, (await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo))!.Rows);
    }

    [Fact]
    public async Task ImportingIntoATableOfTheSameSchemaOverwritesTheFileRowsAndKeepsTheOthers()
    {
        var name = ServerFixture.NewTable("over");
        await Wire.CreateTableAsync(Http, name, """{"dim":2,"allowNonFinite":true}""");
        await Wire.PushAsync(Http, name, [1, 2, 3], [10, 10, 20, 20, 30, 30], 2);
        byte[] file = ImportFiles.Make([2, 4], metadata: """{"paramdb.format":"1","paramdb.schema":"{\"dim\":2,\"allowNonFinite\":true}"}""");
        // Row 4's second value NaN: the schema allows it, so it is stored and pulled back as it is, and counted.
        BinaryPrimitives.WriteSingleLittleEndian(file.AsSpan(file.Length - 4), float.NaN);

        var reply = await ImportFiles.ImportAsync(Http, name, file, 200);

        Assert.False(reply.Created);
        Assert.Equal(2, reply.Rows);
        Assert.Equal(1, reply.NonFiniteValues);
        float[] values = await Wire.PullAsync(Http, name, [1, 2, 3, 4]);
        Assert.Equal((float[])[10f, 10f, 1f, -1f, 30f, 30f, 2f, float.NaN], values);
        Assert.Equal(4, (await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo))!.Rows);

        // Idempotent: the same import again leaves the same rows.
        await ImportFiles.ImportAsync(Http, name, file, 200);
        Assert.Equal(values, await Wire.PullAsync(Http, name, [1, 2, 3, 4]));
    }

    [Fact]
    public async Task AnImportedRowStartsAFreshOptimizerStateSoTheNextPushStepsLikeAFirstPush()
    {
        // adagrad, lr 0.5, initialAccumulator 0: a first push of g = 1 steps by exactly 0.5 (a = 1). After pushes
        // that built up a = 2, a push would step by 0.5/√3 = 0.29 unless the import reset a.
        var name = ServerFixture.NewTable("ada");
        const string schema = """{"dim":2,"updater":{"kind":"adagrad","lr":0.5}}""";
        await Wire.CreateTableAsync(Http, name, schema);
        await Wire.PushAsync(Http, name, [1], [1, 1], 2);
        await Wire.PushAsync(Http, name, [1], [1, 1], 2);
        var info = (await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo))!;
        string metadata = $$"""{"paramdb.format":"1","paramdb.schema":{{System.Text.Json.JsonSerializer.Serialize(System.Text.Json.JsonSerializer.Serialize(info.Schema, ProtocolJson.Default.TableSchema))}}}""";

        await ImportFiles.ImportAsync(Http, name, ImportFiles.Make([1], metadata: metadata), 200);   // row 1 = [1, −1]
        await Wire.PushAsync(Http, name, [1], [1, 1], 2);

        Assert.Equal((float[])[0.5f, -1.5f], await Wire.PullAsync(Http, name, [1]));
    }

    [Fact]
    public async Task AFileOfAnotherSchemaIs409NamingTheDifferenceAndChangesNothing()
    {
        var name = ServerFixture.NewTable("conflict");
        await Wire.CreateTableAsync(Http, name, """{"dim":3,"updater":{"kind":"assign"}}""");
        await Wire.PushAsync(Http, name, [5], [1, 2, 3], 3);
        string before = await StateAsync(name);
        byte[] file = ImportFiles.Make([5], dim: 2);

        using var reply = await Http.PostAsync($"/v1/tables/{name}/import", ImportFiles.Body(file));

        string detail = await Wire.AssertProblemAsync(reply, 409, ProblemCodes.TableExists);
        Assert.Contains("dim: the table has 3, the file 2", detail);
        Assert.Contains("""updater: the table has {"kind":"assign"}, the file {"kind":"add"}""", detail);
        Assert.Equal(before, await StateAsync(name));
        Assert.Empty(ImportFilesLeft());
    }

    /// <summary>Files broken in one place each, and the problem each must get.</summary>
    public static TheoryData<string, int, string> BadFiles => new()
    {
        { "empty body", 400, ProblemCodes.Truncated },
        { "truncated: the last value cut", 400, ProblemCodes.Truncated },
        { "trailing bytes", 400, ProblemCodes.LengthMismatch },
        { "header length off by one", 400, ProblemCodes.BadSafetensors },
        { "header byte flipped: not an object", 400, ProblemCodes.BadSafetensors },
        { "header byte flipped: an unknown tensor", 400, ProblemCodes.BadSafetensors },
        { "header over 100 MB", 400, ProblemCodes.BadSafetensors },
        { "keys unsorted", 400, ProblemCodes.UnsortedKeys },
        { "keys duplicated", 400, ProblemCodes.DuplicateKeys },
        { "keys of dtype I64", 400, ProblemCodes.BadSafetensors },
        { "values of rank 1", 400, ProblemCodes.BadSafetensors },
        { "values of another dim than the schema", 400, ProblemCodes.BadSafetensors },
        { "schema of dim 0", 400, ProblemCodes.BadSafetensors },
        { "schema not JSON", 400, ProblemCodes.BadSafetensors },
        { "no schema", 400, ProblemCodes.BadSafetensors },
        { "format 2", 400, ProblemCodes.BadSafetensors },
        { "table name in the metadata invalid", 400, ProblemCodes.BadSafetensors },
        { "a key at maxKey", 400, ProblemCodes.KeyOutOfRange },
    };

    private static byte[] BadFile(string name)
    {
        byte[] good = ImportFiles.Make([1, 2, 3]);
        switch (name)
        {
            case "empty body": return [];
            case "truncated: the last value cut": return good[..^4];
            case "trailing bytes": return [.. good, 0, 0, 0, 0, 0, 0, 0, 0];
            case "header length off by one": good[0] ^= 1; return good;
            case "header byte flipped: not an object": good[8] ^= 0x20; return good;   // '{' → '['
            case "header byte flipped: an unknown tensor":
                good[Encoding.UTF8.GetString(good).IndexOf("\"keys\"", StringComparison.Ordinal) + 1] ^= 0x20;   // "Keys"
                return good;
            case "header over 100 MB":
                var huge = new byte[64];
                BinaryPrimitives.WriteUInt64LittleEndian(huge, 100_000_001);
                return huge;
            case "keys unsorted": return ImportFiles.Make([1, 3, 2]);
            case "keys duplicated": return ImportFiles.Make([1, 2, 2]);
            case "keys of dtype I64": return ImportFiles.Make([1, 2, 3], keysDtype: "I64");
            case "values of rank 1": return ImportFiles.Make([1, 2, 3], valuesShape: "[6]");
            case "values of another dim than the schema": return ImportFiles.Make([1, 2, 3], dim: 3);
            case "schema of dim 0": return ImportFiles.Make([1, 2, 3], metadata: """{"paramdb.format":"1","paramdb.schema":"{\"dim\":0}"}""");
            case "schema not JSON": return ImportFiles.Make([1, 2, 3], metadata: """{"paramdb.format":"1","paramdb.schema":"dim 2"}""");
            case "no schema": return ImportFiles.Make([1, 2, 3], metadata: """{"paramdb.format":"1"}""");
            case "format 2": return ImportFiles.Make([1, 2, 3], metadata: """{"paramdb.format":"2","paramdb.schema":"{\"dim\":2}"}""");
            case "table name in the metadata invalid": return ImportFiles.Make([1, 2, 3], metadata: """{"paramdb.format":"1","paramdb.schema":"{\"dim\":2}","paramdb.table":"no spaces"}""");
            case "a key at maxKey": return ImportFiles.Make([1, 2, 3], metadata: """{"paramdb.format":"1","paramdb.schema":"{\"dim\":2,\"maxKey\":3}"}""");
            default: throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(BadFiles))]
    public async Task ABadFileIsAProblemAndChangesNeitherAnExistingTableNorTheCatalog(string file, int status, string code)
    {
        var existing = ServerFixture.NewTable("keep");
        var missing = ServerFixture.NewTable("absent");
        await Wire.CreateTableAsync(Http, existing, """{"dim":2}""");
        await Wire.PushAsync(Http, existing, [1, 2, 7], [5, 5, 6, 6, 7, 7], 2);
        string before = await StateAsync(existing);
        string absent = await StateAsync(missing);

        foreach (string table in new[] { existing, missing })
        {
            using var reply = await Http.PostAsync($"/v1/tables/{table}/import", ImportFiles.Body(BadFile(file)));
            await Wire.AssertProblemAsync(reply, status, code);
        }

        Assert.Equal(before, await StateAsync(existing));
        Assert.Equal(absent, await StateAsync(missing));
        Assert.Empty(ImportFilesLeft());
    }

    [Fact]
    public async Task AnInvalidTableNameIs400()
    {
        using var reply = await Http.PostAsync("/v1/tables/no%20spaces/import", ImportFiles.Body(ImportFiles.Make([1])));
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.InvalidTableName);
    }

    [Theory]
    [InlineData("npz")]
    [InlineData("")]
    public async Task AFormatOtherThanSafetensorsIs400AndChangesNothing(string format)
    {
        var name = ServerFixture.NewTable("fmt");
        using var reply = await Http.PostAsync($"/v1/tables/{name}/import?format={format}", ImportFiles.Body(ImportFiles.Make([1])));
        Assert.Contains("safetensors", await Wire.AssertProblemAsync(reply, 400, ProblemCodes.BadRequest));
        await ImportFiles.AssertNoTableAsync(Http, name);
    }

    [Fact]
    public async Task ACompressedBodyIs415()
    {
        var name = ServerFixture.NewTable("lz4");
        var body = ImportFiles.Body(Wire.Lz4(ImportFiles.Make([1])));
        body.Headers.ContentEncoding.Add(MediaTypes.Lz4Encoding);
        using var reply = await Http.PostAsync($"/v1/tables/{name}/import", body);
        await Wire.AssertProblemAsync(reply, 415, ProblemCodes.UnsupportedMediaType);
        await ImportFiles.AssertNoTableAsync(Http, name);
    }
}

/// <summary>A node that takes request bodies of at most 2 KiB, but imports of up to 16 KiB.</summary>
public sealed class SmallImportServer() : ServerFixture("--max-body-size", "2k", "--max-import", "16k");

public sealed class ImportLimitTests(SmallImportServer fixture) : IClassFixture<SmallImportServer>
{
    private HttpClient Http => fixture.Http;

    private static byte[] FileOf(int rows)
    {
        var keys = new ulong[rows];
        for (int i = 0; i < rows; i++) keys[i] = (ulong)i;
        return ImportFiles.Make(keys);
    }

    [Fact]
    public async Task ABodyOverMaxImportIs413AndCreatesNothing()
    {
        var name = ServerFixture.NewTable("big");
        using var reply = await Http.PostAsync($"/v1/tables/{name}/import", ImportFiles.Body(FileOf(2000)));   // 24 KB
        Assert.Contains("--max-import", await Wire.AssertProblemAsync(reply, 413, ProblemCodes.BodyTooLarge));
        await ImportFiles.AssertNoTableAsync(Http, name);
    }

    [Fact]
    public async Task AChunkedBodyOverMaxImportIs413AndCreatesNothing()
    {
        // No Content-Length: the limit is found while the body streams in.
        var name = ServerFixture.NewTable("chunked");
        var content = new StreamContent(new MemoryStream(FileOf(2000)));
        content.Headers.ContentType = new("application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{name}/import") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var reply = await Http.SendAsync(request);
        await Wire.AssertProblemAsync(reply, 413, ProblemCodes.BodyTooLarge);
        await ImportFiles.AssertNoTableAsync(Http, name);
    }

    [Fact]
    public async Task ABodyUnderMaxImportIsImportedThoughItIsOverMaxBodySize()
    {
        var name = ServerFixture.NewTable("fits");
        var reply = await ImportFiles.ImportAsync(Http, name, FileOf(1000), 201);   // 12 KB
        Assert.Equal(1000, reply.Rows);
    }
}

/// <summary>An import survives <c>kill -9</c>: its rows come back from the write-ahead log, with no checkpoint taken.</summary>
public sealed class ImportDurabilityTests
{
    [Fact]
    public async Task AnAcknowledgedImportComesBackAfterSigkillFromTheLogAlone()
    {
        var data = RunningServer.NewTempDirectory();
        try
        {
            byte[] file = ImportFiles.Make([4, 8, 15, 16, 23, 42]);
            using (var node = await NodeProcess.StartAsync(data, "--checkpoint-interval", "0"))
            {
                using var http = new HttpClient { BaseAddress = node.Http1 };
                await Wire.CreateTableAsync(http, "kept", """{"dim":2}""");
                await Wire.PushAsync(http, "kept", [15, 99], [100, 100, 9, 9], 2);
                await ImportFiles.ImportAsync(http, "kept", file, 200);
                await ImportFiles.ImportAsync(http, "made", file, 201);
                await node.KillAsync();
            }
            using (var node = await NodeProcess.StartAsync(data, "--checkpoint-interval", "0"))
            {
                using var http = new HttpClient { BaseAddress = node.Http1 };
                float[] expected = ImportFiles.ValuesOf(6);
                Assert.Equal(expected, await Wire.PullAsync(http, "made", [4, 8, 15, 16, 23, 42]));
                Assert.Equal(expected, await Wire.PullAsync(http, "kept", [4, 8, 15, 16, 23, 42]));
                Assert.Equal((float[])[9f, 9f], await Wire.PullAsync(http, "kept", [99]));
                Assert.Equal(7, (await http.GetFromJsonAsync("/v1/tables/kept", ProtocolJson.Default.TableInfo))!.Rows);
            }
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }
}
