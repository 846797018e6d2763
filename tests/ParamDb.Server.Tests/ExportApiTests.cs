using System.Net.Http.Json;
using System.Runtime.InteropServices;
using ParamDb.Client.Tests;
using ParamDb.Protocol;
using ParamDb.Protocol.Safetensors;

namespace ParamDb.Server.Tests;

/// <summary>A downloaded export, parsed with the Protocol codec, and the sections as arrays.</summary>
internal sealed record ExportFile(SafetensorsHeader Header, ulong[] Keys, float[] Values)
{
    /// <summary>Downloads <c>GET /v1/tables/{table}/export{query}</c> and checks the reply's headers against its body.</summary>
    public static async Task<ExportFile> DownloadAsync(HttpClient http, string table, string query = "")
    {
        using var reply = await http.GetAsync($"/v1/tables/{table}/export{query}");
        byte[] file = await reply.Content.ReadAsByteArrayAsync();
        Assert.True(reply.IsSuccessStatusCode, $"export: {(int)reply.StatusCode} {System.Text.Encoding.UTF8.GetString(file)}");
        Assert.Equal("application/octet-stream", reply.Content.Headers.ContentType?.MediaType);
        Assert.Equal($"attachment; filename=\"{table}.safetensors\"", Assert.Single(reply.Content.Headers.GetValues("Content-Disposition")));
        Assert.Equal(file.Length, reply.Content.Headers.ContentLength);

        Assert.True(SafetensorsHeader.TryParse(file, file.Length, out var header, out var error), error.Detail);
        var keys = MemoryMarshal.Cast<byte, ulong>(file.AsSpan(checked((int)header.KeysOffset), checked((int)header.KeysLength))).ToArray();
        var values = MemoryMarshal.Cast<byte, float>(file.AsSpan(checked((int)header.ValuesOffset))).ToArray();
        Assert.Equal(header.Count, keys.Length);
        Assert.Equal(header.Count * header.Dim, values.Length);
        for (int i = 1; i < keys.Length; i++) Assert.True(keys[i - 1] < keys[i], $"keys[{i - 1}] = {keys[i - 1]} is not below keys[{i}] = {keys[i]}");
        return new ExportFile(header, keys, values);
    }
}

/// <summary>Rows pushed to a table: distinct random keys across the whole key space and the sum pushed to each row.</summary>
internal sealed class PushedRows
{
    private readonly Dictionary<ulong, float[]> _sums = [];

    public PushedRows(int count, int dim, int seed)
    {
        Dim = dim;
        var random = new Random(seed);
        var keys = new HashSet<ulong> { 0, 1, 1UL << 63, ulong.MaxValue - 1, ulong.MaxValue };
        while (keys.Count < count) keys.Add(random.Next(3) == 0 ? (ulong)random.Next(1_000_000) : (ulong)random.NextInt64() << 1 | 1);
        Keys = [.. keys];
        Array.Sort(Keys);
    }

    public int Dim { get; }

    /// <summary>Ascending, as a push needs them.</summary>
    public ulong[] Keys { get; }

    /// <summary>Pushes row i of <paramref name="keys"/> = [i % 100, −(i % 7), 0.25, …]: small values, so sums are exact in float.</summary>
    public async Task PushAsync(HttpClient http, string table, ulong[] keys)
    {
        const int batch = 8192;
        for (int from = 0; from < keys.Length; from += batch)
        {
            ulong[] part = keys[from..Math.Min(keys.Length, from + batch)];
            var values = new float[part.Length * Dim];
            for (int i = 0; i < part.Length; i++)
            {
                var row = values.AsSpan(i * Dim, Dim);
                for (int j = 0; j < Dim; j++) row[j] = j switch { 0 => (from + i) % 100, 1 => -((from + i) % 7), _ => 0.25f * j };
                var sum = _sums.TryGetValue(part[i], out var s) ? s : _sums[part[i]] = new float[Dim];
                for (int j = 0; j < Dim; j++) sum[j] += row[j];
            }
            await Wire.PushAsync(http, table, part, values, Dim);
        }
    }

    /// <summary>Every pushed key in the key order with its row: <paramref name="init"/> plus what was pushed (the add updater).</summary>
    public float[] ExpectedValues(float init)
    {
        var expected = new float[Keys.Length * Dim];
        for (int i = 0; i < Keys.Length; i++)
            for (int j = 0; j < Dim; j++) expected[i * Dim + j] = init + _sums[Keys[i]][j];
        return expected;
    }
}

public sealed class ExportApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task ExportHoldsEveryPushedRowOnceInKeyOrderWithTheValuesAPullReturns()
    {
        var name = ServerFixture.NewTable("exp");
        await Wire.CreateTableAsync(Http, name, """{"dim":5,"init":{"kind":"constant","value":0.5}}""");
        var rows = new PushedRows(3000, dim: 5, seed: 11);
        await rows.PushAsync(Http, name, rows.Keys);
        await rows.PushAsync(Http, name, rows.Keys[..1000]);   // some rows twice

        var export = await ExportFile.DownloadAsync(Http, name, "?format=safetensors");

        var info = await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo);
        Assert.Equal(name, export.Header.Table);
        Assert.Equal(info!.Schema, export.Header.Schema);
        Assert.Equal(5, export.Header.Dim);
        Assert.Equal(3000, export.Header.Count);
        Assert.Equal(rows.Keys, export.Keys);
        Assert.Equal(rows.ExpectedValues(init: 0.5f), export.Values);
        Assert.Equal(await Wire.PullAsync(Http, name, rows.Keys), export.Values);
    }

    [Fact]
    public async Task AnEmptyTableExportsAValidFileWithNoRows()
    {
        var name = ServerFixture.NewTable("exp");
        await Wire.CreateTableAsync(Http, name, """{"dim":3,"updater":{"kind":"adam","lr":0.01}}""");
        var export = await ExportFile.DownloadAsync(Http, name);
        Assert.Equal(0, export.Header.Count);
        Assert.Equal(3, export.Header.Dim);
        Assert.Equal("adam", export.Header.Schema.Updater!.Kind);
        Assert.Empty(export.Keys);
    }

    [Fact]
    public async Task ExportingAnUnknownTableIs404TableNotFound()
    {
        using var reply = await Http.GetAsync($"/v1/tables/{ServerFixture.NewTable("missing")}/export");
        await Wire.AssertProblemAsync(reply, 404, ProblemCodes.TableNotFound);
    }

    [Fact]
    public async Task ExportingAnInvalidTableNameIs400()
    {
        using var reply = await Http.GetAsync("/v1/tables/no%20spaces/export");
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.InvalidTableName);
    }

    [Theory]
    [InlineData("npz")]
    [InlineData("")]
    [InlineData("safetensors2")]
    public async Task AFormatOtherThanSafetensorsIs400(string format)
    {
        var name = ServerFixture.NewTable("exp");
        await Wire.CreateTableAsync(Http, name, """{"dim":1}""");
        using var reply = await Http.GetAsync($"/v1/tables/{name}/export?format={format}");
        var detail = await Wire.AssertProblemAsync(reply, 400, ProblemCodes.BadRequest);
        Assert.Contains("safetensors", detail);
    }
}

/// <summary>A node whose exports sort in runs of 1,024 keys, the smallest allowed, so a few thousand rows need many runs on disk.</summary>
public sealed class SmallExportRunServer() : ServerFixture("--export-run-keys", "1024")
{
    /// <summary>Where exports keep their runs.</summary>
    public string TempDirectory => Path.Combine(Server.DataDirectory, "tmp");

    /// <summary>Export folders that exist now.</summary>
    public string[] ExportFolders() => Directory.Exists(TempDirectory) ? Directory.GetDirectories(TempDirectory, "export-*") : [];
}

public sealed class ExportRunsTests(SmallExportRunServer fixture) : IClassFixture<SmallExportRunServer>
{
    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task ATableOfDozensOfRunsExportsSortedAndLeavesNoTemporaryFiles()
    {
        var name = ServerFixture.NewTable("runs");
        await Wire.CreateTableAsync(Http, name, """{"dim":3}""");
        var rows = new PushedRows(40_000, dim: 3, seed: 5);   // 40 runs of 1,024 keys
        await rows.PushAsync(Http, name, rows.Keys);
        await rows.PushAsync(Http, name, rows.Keys[20_000..]);

        var export = await ExportFile.DownloadAsync(Http, name);

        Assert.Equal(rows.Keys, export.Keys);
        Assert.Equal(rows.ExpectedValues(init: 0f), export.Values);
        await Eventually.TrueAsync(() => Task.FromResult(fixture.ExportFolders().Length == 0), "the export's folder is deleted once the reply ends");
    }

    [Fact]
    public async Task AClientThatLeavesMidDownloadLeavesNoTemporaryFiles()
    {
        // 50,000 rows of dim 256: a 51 MB reply, far more than loopback socket buffers hold (~10 MB), so the
        // server is still writing, with its sorted keys on disk, when the client goes.
        var name = ServerFixture.NewTable("gone");
        await Wire.CreateTableAsync(Http, name, """{"dim":256}""");
        var rows = new PushedRows(50_000, dim: 256, seed: 9);
        await rows.PushAsync(Http, name, rows.Keys);

        using (var client = fixture.Server.CreateClient())
        using (var reply = await client.GetAsync($"/v1/tables/{name}/export", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.True(reply.IsSuccessStatusCode);
            Assert.True(reply.Content.Headers.ContentLength > 50_000L * 256 * 4);
            await using var body = await reply.Content.ReadAsStreamAsync();
            await body.ReadExactlyAsync(new byte[4096]);
            string[] live = fixture.ExportFolders();
            Assert.Single(live);
            Assert.Single(Directory.GetFiles(live[0]));   // the runs, merged into one sorted file
        }

        await Eventually.TrueAsync(() => Task.FromResult(fixture.ExportFolders().Length == 0), "the export's folder is deleted once the client is gone");
    }
}
