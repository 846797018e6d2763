using System.Net;
using System.Net.Http.Json;
using ParamDb.Client.Tests;
using ParamDb.Protocol;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>The snapshot routes on a real node: create, list, get, delete, export from a snapshot, bad names.</summary>
public sealed class SnapshotApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    private static int _next;

    internal static string NewSnapshot(string prefix = "snap") => $"{prefix}-{Interlocked.Increment(ref _next)}";

    internal static async Task<SnapshotInfo> CreateAsync(HttpClient http, string name)
    {
        using var reply = await http.PostAsync("/v1/snapshots", Wire.Json($$"""{"name":"{{name}}"}"""));
        Assert.True(reply.StatusCode == HttpStatusCode.Created, $"create: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
        Assert.Equal($"/v1/snapshots/{name}", reply.Headers.Location?.OriginalString);
        return (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.SnapshotInfo))!;
    }

    [Fact]
    public async Task ASnapshotIsListedWithItsTablesRowsAndBytesAndDeletedOnRequest()
    {
        var table = ServerFixture.NewTable("snap");
        await Wire.CreateTableAsync(Http, table, """{"dim":3}""");
        await Wire.PushAsync(Http, table, [1, 2, 3], Wire.Fill(9, 1f), 3);
        var name = NewSnapshot();

        SnapshotInfo created = await CreateAsync(Http, name);

        Assert.Equal(name, created.Name);
        SnapshotTable held = Assert.Single(created.Tables, t => t.Name == table);
        Assert.Equal(3, held.Rows);
        Assert.Equal(3, held.Schema.Dim);
        Assert.True(created.Bytes > 0);
        var got = await Http.GetFromJsonAsync($"/v1/snapshots/{name}", ProtocolJson.Default.SnapshotInfo);
        Assert.Equal(created.CreatedAt, got!.CreatedAt);
        Assert.Equal(created.Rows, got.Rows);
        var list = await Http.GetFromJsonAsync("/v1/snapshots", ProtocolJson.Default.SnapshotList);
        Assert.Contains(list!.Snapshots, s => s.Name == name);

        using (var again = await Http.PostAsync("/v1/snapshots", Wire.Json($$"""{"name":"{{name}}"}""")))
            await Wire.AssertProblemAsync(again, 409, ProblemCodes.SnapshotExists);

        using (var deleted = await Http.DeleteAsync($"/v1/snapshots/{name}")) Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        using (var gone = await Http.GetAsync($"/v1/snapshots/{name}")) await Wire.AssertProblemAsync(gone, 404, ProblemCodes.SnapshotNotFound);
        using (var twice = await Http.DeleteAsync($"/v1/snapshots/{name}")) await Wire.AssertProblemAsync(twice, 404, ProblemCodes.SnapshotNotFound);
        Assert.False(Directory.Exists(Path.Combine(fixture.Server.DataDirectory, "snapshots", name)));
    }

    [Fact]
    public async Task ASnapshotExportIsThePointInTimeFileWhileTheLiveTableMovesOn()
    {
        var table = ServerFixture.NewTable("snapexp");
        await Wire.CreateTableAsync(Http, table, """{"dim":4,"init":{"kind":"constant","value":0.5}}""");
        var rows = new PushedRows(2000, dim: 4, seed: 3);
        await rows.PushAsync(Http, table, rows.Keys);
        var live = await ExportFile.DownloadAsync(Http, table);
        var name = NewSnapshot();
        await CreateAsync(Http, name);
        await rows.PushAsync(Http, table, rows.Keys);   // every row changes after the snapshot

        using var reply = await Http.GetAsync($"/v1/snapshots/{name}/tables/{table}/export?format=safetensors");
        byte[] file = await reply.Content.ReadAsByteArrayAsync();
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        Assert.Equal($"attachment; filename=\"{table}.safetensors\"", Assert.Single(reply.Content.Headers.GetValues("Content-Disposition")));
        Assert.Equal(2000, live.Header.Count);
        Assert.True(Protocol.Safetensors.SafetensorsHeader.TryParse(file, file.Length, out var header, out var error), error.Detail);
        Assert.Equal(2000, header.Count);
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.AsSpan(checked((int)header.ValuesOffset))).ToArray();
        Assert.Equal(live.Values, values);
        Assert.NotEqual(live.Values, (await ExportFile.DownloadAsync(Http, table)).Values);
    }

    [Fact]
    public async Task ExportsOfUnknownSnapshotsTablesAndFormatsAreProblems()
    {
        var name = NewSnapshot();
        await CreateAsync(Http, name);
        using (var r = await Http.GetAsync($"/v1/snapshots/nope-{name}/tables/t/export")) await Wire.AssertProblemAsync(r, 404, ProblemCodes.SnapshotNotFound);
        using (var r = await Http.GetAsync($"/v1/snapshots/{name}/tables/not-there/export")) await Wire.AssertProblemAsync(r, 404, ProblemCodes.TableNotFound);
        using (var r = await Http.GetAsync($"/v1/snapshots/{name}/tables/t/export?format=npz")) await Wire.AssertProblemAsync(r, 400, ProblemCodes.BadRequest);
        using (var r = await Http.GetAsync($"/v1/snapshots/..%2F..%2Fetc/tables/t/export")) Assert.Contains((int)r.StatusCode, new[] { 400, 404 });
    }

    [Theory]
    [InlineData("""{"name":".."}""")]
    [InlineData("""{"name":".hidden"}""")]
    [InlineData("""{"name":"a/b"}""")]
    [InlineData("""{"name":"../x"}""")]
    [InlineData("""{"name":""}""")]
    [InlineData("""{"nom":"x"}""")]
    public async Task BadNamesAre400AndCreateNothing(string body)
    {
        var before = Directory.GetFileSystemEntries(Path.Combine(fixture.Server.DataDirectory, "snapshots")).Length;
        using var reply = await Http.PostAsync("/v1/snapshots", Wire.Json(body));
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.InvalidSnapshotName);
        Assert.Equal(before, Directory.GetFileSystemEntries(Path.Combine(fixture.Server.DataDirectory, "snapshots")).Length);
        Assert.False(Directory.Exists(Path.Combine(fixture.Server.DataDirectory, "x")));
    }

    [Fact]
    public async Task ALongNameIs400AndRoutesWithBadNamesAre400()
    {
        using (var r = await Http.PostAsync("/v1/snapshots", Wire.Json($$"""{"name":"{{new string('a', 129)}}"}""")))
            await Wire.AssertProblemAsync(r, 400, ProblemCodes.InvalidSnapshotName);
        using (var r = await Http.GetAsync("/v1/snapshots/.hidden")) await Wire.AssertProblemAsync(r, 400, ProblemCodes.InvalidSnapshotName);
        using (var r = await Http.DeleteAsync("/v1/snapshots/a%20b")) await Wire.AssertProblemAsync(r, 400, ProblemCodes.InvalidSnapshotName);
        using (var r = await Http.PostAsync("/v1/snapshots/.x/restore", null)) await Wire.AssertProblemAsync(r, 400, ProblemCodes.InvalidSnapshotName);
        using (var r = await Http.PostAsync("/v1/snapshots/never-made/restore", null)) await Wire.AssertProblemAsync(r, 404, ProblemCodes.SnapshotNotFound);
        using (var r = await Http.PostAsync("/v1/snapshots", new StringContent("name=x"))) await Wire.AssertProblemAsync(r, 415, ProblemCodes.UnsupportedMediaType);
        using (var r = await Http.PostAsync("/v1/snapshots", Wire.Json("{"))) await Wire.AssertProblemAsync(r, 400, ProblemCodes.BadRequest);
    }
}

/// <summary>Restores on a node of their own each: a restore replaces every table of the node.</summary>
public sealed class SnapshotRestoreTests
{
    /// <summary>Row 1 of table m is 1 in snapshot s and 2 on the node.</summary>
    private static async Task SnapshotOfAnOlderRowAsync(HttpClient http)
    {
        await Wire.CreateTableAsync(http, "m", """{"dim":1}""");
        await Wire.PushAsync(http, "m", [1], [1f], 1);
        await SnapshotApiTests.CreateAsync(http, "s");
        await Wire.PushAsync(http, "m", [1], [1f], 1);
    }

    [Fact]
    public async Task ARestoreBringsBackTheSnapshotsTablesAndRowsAndTheNodeGoesOnFromThere()
    {
        var server = await RunningServer.StartAsync();
        try
        {
            using var http = server.CreateClient();
            await Wire.CreateTableAsync(http, "model", """{"dim":2}""");
            await Wire.PushAsync(http, "model", [1, 2], Wire.Fill(4, 1f), 2);
            await SnapshotApiTests.CreateAsync(http, "epoch-1");

            await Wire.PushAsync(http, "model", [1, 2, 3], Wire.Fill(6, 5f), 2);
            await Wire.CreateTableAsync(http, "later", """{"dim":1}""");
            using (var c = await http.PostAsync("/v1/checkpoint", null)) Assert.True(c.IsSuccessStatusCode);

            using var reply = await http.PostAsync("/v1/snapshots/epoch-1/restore", null);
            Assert.True(reply.IsSuccessStatusCode, await reply.Content.ReadAsStringAsync());
            var restored = (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.RestoreReply))!;
            Assert.Equal("epoch-1", restored.Snapshot.Name);
            Assert.True(restored.PausedMs > 0 && restored.PausedMs <= restored.DurationMs);

            var tables = await http.GetFromJsonAsync("/v1/tables", ProtocolJson.Default.TableList);
            Assert.Equal(["model"], tables!.Tables.Select(t => t.Name));
            Assert.Equal(2, tables.Tables[0].Rows);
            Assert.Equal(new float[] { 1, 1, 1, 1, 0, 0 }, await Wire.PullAsync(http, "model", [1, 2, 3]));

            // Writes after the restore are kept across a restart, as any write.
            await Wire.PushAsync(http, "model", [3], Wire.Fill(2, 2f), 2);
            server = await server.RestartAsync();
            using var after = server.CreateClient();
            Assert.Equal(new float[] { 1, 1, 1, 1, 2, 2 }, await Wire.PullAsync(after, "model", [1, 2, 3]));
            Assert.Contains((await after.GetFromJsonAsync("/v1/snapshots", ProtocolJson.Default.SnapshotList))!.Snapshots, s => s.Name == "epoch-1");
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task ARestoreEndsOpenStreamsWith503AndHoldsNewRequestsUntilItIsDone()
    {
        var server = await RunningServer.StartAsync();
        try
        {
            using var http = server.CreateClient();
            await SnapshotOfAnOlderRowAsync(http);

            await using var stream = await StreamClient.OpenAsync(server);
            await stream.SendAsync(StreamFrames.Pull(1, "m", [1]));
            Assert.Equal(1UL, (await stream.ReadOneAsync()).Id);

            Task<HttpResponseMessage> restore = http.PostAsync("/v1/snapshots/s/restore", null);
            var last = await stream.ReadOneAsync();
            Assert.Equal(0UL, last.Id);
            string detail = last.AssertProblem(503, ProblemCodes.Unavailable);
            Assert.Contains("restoring a snapshot", detail);
            Assert.Null(await stream.ReadAsync());

            // Pulls sent while the restore runs see either the old state or the restored one, never an error.
            var pulls = new List<Task<float[]>>();
            for (int i = 0; i < 20; i++) pulls.Add(Wire.PullAsync(http, "m", [1]));
            using var done = await restore;
            Assert.True(done.IsSuccessStatusCode, await done.Content.ReadAsStringAsync());
            foreach (var pull in pulls) Assert.Contains((await pull)[0], new[] { 1f, 2f });
            Assert.Equal(new float[] { 1 }, await Wire.PullAsync(http, "m", [1]));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task ADamagedSnapshotIsRefusedWith409AndTheNodeKeepsItsData()
    {
        var server = await RunningServer.StartAsync();
        try
        {
            using var http = server.CreateClient();
            await SnapshotOfAnOlderRowAsync(http);
            string folder = Directory.GetDirectories(Path.Combine(server.DataDirectory, "snapshots", "s", "checkpoints", "cpr-checkpoints"))[0];
            string info = Directory.GetFiles(folder, "info.dat*")[0];
            byte[] bytes = File.ReadAllBytes(info);
            bytes[^1] ^= 0x5A;
            File.WriteAllBytes(info, bytes);

            using var reply = await http.PostAsync("/v1/snapshots/s/restore", null);
            var problem = await Wire.AssertProblemAsync(reply, 409, ProblemCodes.SnapshotDamaged);
            Assert.Contains("info.dat", problem);
            Assert.Equal(new float[] { 2 }, await Wire.PullAsync(http, "m", [1]));
            using var export = await http.GetAsync("/v1/snapshots/s/tables/m/export");
            await Wire.AssertProblemAsync(export, 409, ProblemCodes.SnapshotDamaged);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task WithSnapshotsToKeep2TheOldestGo()
    {
        var server = await RunningServer.StartAsync(null, "--snapshots-to-keep", "2");
        try
        {
            using var http = server.CreateClient();
            foreach (var name in new[] { "a", "b", "c" }) await SnapshotApiTests.CreateAsync(http, name);
            var list = await http.GetFromJsonAsync("/v1/snapshots", ProtocolJson.Default.SnapshotList);
            Assert.Equal(["c", "b"], list!.Snapshots.Select(s => s.Name));
            Assert.False(Directory.Exists(Path.Combine(server.DataDirectory, "snapshots", "a")));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}

/// <summary>
/// A node with a 1 GiB budget: its hash index has 1 Mi buckets, a 64 MiB <c>ht.dat.0</c> in every full checkpoint,
/// which a snapshot of a few rows must not copy whole.
/// </summary>
public sealed class SnapshotSizeTests
{
    /// <summary>Disk blocks a tree takes, in bytes, as <c>du</c> counts them (holes take none).</summary>
    private static async Task<long> DiskBytesAsync(string path)
    {
        var du = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("du", ["-s", "--block-size=1", path]) { RedirectStandardOutput = true })!;
        string output = await du.StandardOutput.ReadToEndAsync();
        await du.WaitForExitAsync();
        Assert.Equal(0, du.ExitCode);
        return long.Parse(output.Split('\t')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task ASnapshotOfFourRowsTakesUnder4MiBOnANodeWithA1GiBBudget()
    {
        await using var server = await RunningServer.StartAsync(null, "--memory", "1g");
        using var http = server.CreateClient();
        await Wire.CreateTableAsync(http, "tiny", """{"dim":4}""");
        await Wire.PushAsync(http, "tiny", [1, 2, 3, 4], Wire.Fill(16, 1f), 4);

        SnapshotInfo info = await SnapshotApiTests.CreateAsync(http, "s");

        string folder = Path.Combine(server.DataDirectory, "snapshots", "s");
        long disk = await DiskBytesAsync(folder);
        // Before sparse copies: 64 MiB (67,112,076 bytes), the whole bucket array.
        Assert.True(disk < 4 << 20, $"the snapshot takes {disk} bytes on disk");
        Assert.True(info.Bytes < 4 << 20, $"the snapshot says it stores {info.Bytes} bytes");
        Assert.True(info.Bytes > 0);

        // The holes read back as zeros: the snapshot verifies, is exported from and restored, and the restored
        // store recovers after a restart.
        await Wire.PushAsync(http, "tiny", [1], Wire.Fill(4, 5f), 4);
        using (var export = await http.GetAsync("/v1/snapshots/s/tables/tiny/export"))
            Assert.True(export.IsSuccessStatusCode, await export.Content.ReadAsStringAsync());
        using (var restore = await http.PostAsync("/v1/snapshots/s/restore", null))
            Assert.True(restore.IsSuccessStatusCode, await restore.Content.ReadAsStringAsync());
        Assert.Equal(Wire.Fill(16, 1f), await Wire.PullAsync(http, "tiny", [1, 2, 3, 4]));
        await using var restarted = await server.RestartAsync();
        using var again = restarted.CreateClient();
        Assert.Equal(Wire.Fill(16, 1f), await Wire.PullAsync(again, "tiny", [1, 2, 3, 4]));
    }
}
