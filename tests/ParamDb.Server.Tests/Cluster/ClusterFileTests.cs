using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Export and import on three real nodes (docs/cluster.md, "Export and import"): the merged export of a table is
/// byte for byte a single node's export of the same pushes, an import spreads its rows over the ring, and a bad
/// scope or a stray part is refused and changes nothing.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterFileTests : IAsyncLifetime
{
    private const string Schema = """{"dim":16,"updater":{"kind":"sgd","lr":0.25}}""";
    private const int Dim = 16;

    private LocalCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await LocalCluster.StartAsync(3);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task AnExportThroughAnyNodeIsByteForByteASingleNodesExportOfTheSamePushes()
    {
        await using RunningServer single = await RunningServer.StartAsync();
        using HttpClient reference = single.CreateClient();
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", Schema);
        await Wire.CreateTableAsync(reference, "t", Schema);
        // Empty first: a file of no rows.
        Assert.Equal(await reference.GetByteArrayAsync("v1/tables/t/export"), await n1.GetByteArrayAsync("v1/tables/t/export"));

        // 40,000 keys: more than one 32 Ki-key window per node, in both phases of the merge.
        var random = new Random(5);
        for (int round = 0; round < 4; round++)
        {
            ulong[] keys = RandomKeys(random, 10_000);
            float[] values = [.. Enumerable.Range(0, keys.Length * Dim).Select(_ => (float)random.NextDouble())];
            using HttpClient pusher = _cluster.Client(1 + round % 3);
            await Wire.PushAsync(pusher, "t", keys, values, Dim);
            await Wire.PushAsync(reference, "t", keys, values, Dim);
        }
        byte[] expected = await reference.GetByteArrayAsync("v1/tables/t/export");
        long parts = 0;
        for (int i = 1; i <= 3; i++)
        {
            using HttpClient client = _cluster.Client(i);
            using HttpResponseMessage reply = await client.GetAsync("v1/tables/t/export");
            Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
            Assert.Equal(expected.Length, reply.Content.Headers.ContentLength);
            Assert.Equal(expected, await reply.Content.ReadAsByteArrayAsync());
            // Each node's own part is a valid export of fewer rows.
            long own = RowsOf(await client.GetByteArrayAsync("v1/tables/t/export?scope=node"));
            Assert.InRange(own, 1, RowsOf(expected) - 1);
            parts += own;
        }
        Assert.Equal(RowsOf(expected), parts);
    }

    [Fact]
    public async Task AnImportThroughAnyNodeSpreadsItsRowsAndExportsBackTheSameFile()
    {
        await using RunningServer single = await RunningServer.StartAsync();
        using HttpClient reference = single.CreateClient();
        await Wire.CreateTableAsync(reference, "imp", Schema);
        var random = new Random(9);
        ulong[] keys = RandomKeys(random, 30_000);
        float[] values = [.. Enumerable.Range(0, keys.Length * Dim).Select(_ => (float)random.NextDouble())];
        await Wire.PushAsync(reference, "imp", keys, values, Dim);
        byte[] file = await reference.GetByteArrayAsync("v1/tables/imp/export");

        using HttpClient n2 = _cluster.Client(2);
        using (HttpResponseMessage created = await n2.PostAsync("v1/tables/imp/import", File(file)))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            ImportReply reply = (await created.Content.ReadFromJsonAsync(ProtocolJson.Default.ImportReply))!;
            Assert.Equal((keys.Length, true, (long)file.Length), (reply.Rows, reply.Created, reply.Bytes));
        }
        var own = new long[3];
        for (int i = 1; i <= 3; i++) own[i - 1] = await _cluster.OwnRowsAsync(i, "imp");
        Assert.All(own, rows => Assert.InRange(rows, keys.Length / 6, keys.Length / 2));
        Assert.Equal(keys.Length, own.Sum());

        using HttpClient n3 = _cluster.Client(3);
        ulong[] asked = [.. keys.Where((_, i) => i % 7 == 0)];
        Assert.Equal(await Wire.PullAsync(reference, "imp", asked), await Wire.PullAsync(n3, "imp", asked));
        Assert.Equal(file, await n3.GetByteArrayAsync("v1/tables/imp/export"));

        // Again into the existing table: 200, the same rows overwritten, nothing added.
        using HttpClient n1 = _cluster.Client(1);
        using (HttpResponseMessage again = await n1.PostAsync("v1/tables/imp/import", File(file)))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.Equal(keys.Length, (await again.Content.ReadFromJsonAsync(ProtocolJson.Default.ImportReply))!.Rows);
        }
        Assert.Equal(keys.Length, (await n1.GetFromJsonAsync("v1/tables/imp", ProtocolJson.Default.TableInfo))!.Rows);
    }

    [Theory]
    [InlineData("GET", "v1/tables/t/export?scope=cluster")]
    [InlineData("POST", "v1/tables/t/import?scope=all")]
    [InlineData("GET", "v1/tables/t?scope=Node")]
    [InlineData("GET", "v1/tables?scope=")]
    [InlineData("POST", "v1/checkpoint?scope=nodes")]
    public async Task AnUnknownScopeIs400AndChangesNothing(string method, string path)
    {
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", Schema);
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "POST" ? File([]) : null };
        using HttpResponseMessage reply = await n1.SendAsync(request);
        string detail = await Wire.AssertProblemAsync(reply, 400, ProblemCodes.BadRequest);
        Assert.Contains("scope", detail, StringComparison.Ordinal);
        Assert.Equal(0, (await n1.GetFromJsonAsync("v1/tables/t", ProtocolJson.Default.TableInfo))!.Rows);
    }

    [Fact]
    public async Task APartOfAnImportIsTakenOnlyFromAPeerOfTheSameRingEpoch()
    {
        await using RunningServer single = await RunningServer.StartAsync();
        using HttpClient reference = single.CreateClient();
        await Wire.CreateTableAsync(reference, "p", Schema);
        await Wire.PushAsync(reference, "p", [1, 2, 3], new float[3 * Dim], Dim);
        byte[] file = await reference.GetByteArrayAsync("v1/tables/p/export");
        using HttpClient n1 = _cluster.Client(1);
        ulong epoch = (await _cluster.ViewAsync(1)).Epoch;

        // From a client: 400, and no table was made.
        using (HttpResponseMessage stray = await n1.PostAsync("v1/tables/p/import?scope=node", File(file)))
            Assert.Contains("peer", await Wire.AssertProblemAsync(stray, 400, ProblemCodes.BadRequest), StringComparison.Ordinal);
        // From a peer, cut by another epoch: 421 wrong_node.
        using (var request = new HttpRequestMessage(HttpMethod.Post, "v1/tables/p/import?scope=node") { Content = File(file) })
        {
            request.Headers.Add("ParamDb-Peer", "n2");
            request.Headers.Add(ParamDbHeaders.RingEpoch, (epoch + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            using HttpResponseMessage stale = await n1.SendAsync(request);
            await Wire.AssertProblemAsync(stale, 421, ProblemCodes.WrongNode);
        }
        using HttpResponseMessage missing = await n1.GetAsync("v1/tables/p");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task ABadFileImportedThroughAClusterIs400AndNoNodeGetsTheTable()
    {
        using HttpClient n3 = _cluster.Client(3);
        using HttpResponseMessage bad = await n3.PostAsync("v1/tables/bad/import", File([1, 2, 3, 4, 5, 6, 7, 8, 9]));
        await Wire.AssertProblemAsync(bad, 400, ProblemCodes.BadSafetensors);
        for (int i = 1; i <= 3; i++)
        {
            using HttpClient client = _cluster.Client(i);
            using HttpResponseMessage missing = await client.GetAsync("v1/tables/bad");
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
    }

    [Fact]
    public async Task WithANodeDownAnExportIs503BeforeTheDownloadAndAnImportSaysWhatTheOthersWrote()
    {
        await using RunningServer single = await RunningServer.StartAsync();
        using HttpClient reference = single.CreateClient();
        await Wire.CreateTableAsync(reference, "d", Schema);
        ulong[] keys = RandomKeys(new Random(3), 3_000);
        await Wire.PushAsync(reference, "d", keys, new float[keys.Length * Dim], Dim);
        byte[] file = await reference.GetByteArrayAsync("v1/tables/d/export");

        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "d", Schema);
        await _cluster.StopNodeAsync(3);

        using (HttpResponseMessage export = await n1.GetAsync("v1/tables/d/export"))
        {
            string detail = await Wire.AssertProblemAsync(export, 503, ProblemCodes.Unavailable);
            Assert.Contains("'n3'", detail, StringComparison.Ordinal);
        }
        using (HttpResponseMessage import = await n1.PostAsync("v1/tables/d/import", File(file)))
        {
            string detail = await Wire.AssertProblemAsync(import, 503, ProblemCodes.Unavailable);
            Assert.Contains("'n3'", detail, StringComparison.Ordinal);
            Assert.Contains("run it again", detail, StringComparison.Ordinal);
        }
        // The two live nodes hold their parts; n3's rows are missing until the import runs again.
        long live = await _cluster.OwnRowsAsync(1, "d") + await _cluster.OwnRowsAsync(2, "d");
        Assert.InRange(live, 1, keys.Length - 1);
    }

    /// <summary>Up to <paramref name="count"/> distinct random keys below 2^40, ascending.</summary>
    private static ulong[] RandomKeys(Random random, int count) =>
        [.. Enumerable.Range(0, count).Select(_ => (ulong)random.NextInt64(1L << 40)).Distinct().Order()];

    private static ByteArrayContent File(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    /// <summary>n from a safetensors export's prefix.</summary>
    private static long RowsOf(byte[] file)
    {
        Assert.True(ParamDb.Protocol.Safetensors.SafetensorsHeader.TryParse(file, file.Length, out var header, out var error), error.Detail);
        return header.Count;
    }
}
