using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Client.Tests;

/// <summary>The tests that share one three-node cluster (<see cref="ClusterFixture"/>); they run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}

/// <summary>
/// <see cref="ParamDbClient"/> against three real nodes: it slices by the ring and sends each node its own keys with the
/// ring epoch, gets the same rows as a single node and as a client that lets a node forward, and recovers from a
/// stale or forged ring through 421 and a refetch.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterClientTests(ClusterFixture fixture)
{
    private const int Dim = 3;

    private static TableSchema Schema => new()
    {
        Dim = Dim,
        Init = new InitializerSpec { Kind = InitializerSpec.Normal, Std = 0.1, Seed = 11 },
        Updater = new UpdaterSpec { Kind = UpdaterSpec.Sgd, Lr = 0.5 },
    };

    private async Task CreateAsync(ParamDbClient client, string table)
    {
        await ClusterFixture.WithLeaderAsync(() => client.CreateTableAsync(table, Schema));
        await fixture.VisibleEverywhereAsync(table);
    }

    private static ulong[] RandomKeys(Random random, int count, long below)
    {
        var set = new SortedSet<ulong>();
        while (set.Count < count) set.Add((ulong)random.NextInt64(below));
        return [.. set];
    }

    private static float[] RandomRows(Random random, int rows)
    {
        var values = new float[rows * Dim];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() - 0.5);
        return values;
    }

    /// <summary>Pushes the same batches through both clients and checks that pulls, of pushed and never-pushed keys, agree.</summary>
    private static async Task SameOperationsAsync(ParamDbClient a, string tableA, ParamDbClient b, string tableB, HashSet<ulong> pushed, int seed)
    {
        var random = new Random(seed);
        foreach (int size in new[] { 1, 7, 1_000, 20_000 })
        {
            ulong[] keys = RandomKeys(random, size, 1L << 40);
            float[] values = RandomRows(random, keys.Length);
            PushResult ra = await a.PushAsync(tableA, keys, values);
            PushResult rb = await b.PushAsync(tableB, keys, values);
            Assert.Equal((keys.Length, (long)keys.Length), (ra.Rows, ra.Applied));
            Assert.Equal(rb, ra);
            pushed.UnionWith(keys);

            ulong[] asked = [.. new SortedSet<ulong>(keys.Take(size / 2 + 1).Concat(RandomKeys(random, size, 1L << 40)))];
            float[] rowsA = new float[asked.Length * Dim], rowsB = new float[asked.Length * Dim];
            await a.PullAsync(tableA, asked, rowsA);
            await b.PullAsync(tableB, asked, rowsB);
            Assert.Equal(rowsB, rowsA);
            Assert.Equal(rowsB, await a.PullAsync(tableA, asked));
        }

        // Dense keys, explicit and as ranges, across many 4,096-key blocks (so across nodes), not block-aligned.
        ulong[] dense = [.. Enumerable.Range(0, 30_000).Select(i => 1_000_003UL + (ulong)i)];
        float[] denseValues = RandomRows(random, dense.Length);
        Assert.Equal(await b.PushAsync(tableB, dense, denseValues), await a.PushAsync(tableA, dense, denseValues));
        pushed.UnionWith(dense);
        const ulong first = 123_457;
        const int count = 70_000;
        float[] rangeValues = RandomRows(random, count);
        Assert.Equal(await b.PushRangeAsync(tableB, first, rangeValues, Dim), await a.PushRangeAsync(tableA, first, rangeValues, Dim));
        for (int i = 0; i < count; i++) pushed.Add(first + (ulong)i);

        float[] rangeA = new float[120_000 * Dim], rangeB = new float[120_000 * Dim];
        await a.PullRangeAsync(tableA, 100_000, 120_000, rangeA);
        await b.PullRangeAsync(tableB, 100_000, 120_000, rangeB);
        Assert.Equal(rangeB, rangeA);
        Assert.Equal(rangeB, await a.PullRangeAsync(tableA, 100_000, 120_000));
        Assert.Equal(await b.PullAsync(tableB, dense), await a.PullAsync(tableA, dense));
        // A range inside one block: one node, one request.
        Assert.Equal(await b.PullRangeAsync(tableB, 200_000, 10), await a.PullRangeAsync(tableA, 200_000, 10));
        foreach (ulong key in new[] { dense[0], first + 5, 77UL })
            Assert.Equal(await b.GetRowAsync(tableB, key), await a.GetRowAsync(tableA, key));
    }

    [Fact]
    public async Task PushesAndPullsGoStraightToEachKeysPrimaryAndAgreeWithASingleNode()
    {
        var recorder = new RecordingHandler();
        using var http = new HttpClient(recorder) { BaseAddress = fixture.Cluster.Http(2) };
        using var smart = new ParamDbClient(http);
        using var reference = new ParamDbClient(fixture.Single.Http1Uri);
        const string table = "straight";
        await CreateAsync(smart, table);
        await reference.CreateTableAsync(table, Schema);
        var pushed = new HashSet<ulong>();

        await SameOperationsAsync(smart, table, reference, table, pushed, seed: 5);

        var (view, ring) = await fixture.RingAsync();
        ulong hash = Ring.NameHash(table);
        Assert.Equal(0, smart.Ring.WrongNodeReplies);
        Assert.Equal(view.Epoch, smart.Ring.Current!.Epoch);
        var nodesUsed = new HashSet<int>();
        int data = 0;
        foreach (RecordingHandler.Sent sent in recorder.Requests)
        {
            if (!sent.Path.EndsWith("/push", StringComparison.Ordinal) && !sent.Path.EndsWith("/pull", StringComparison.Ordinal)) continue;
            data++;
            Assert.Equal(view.Epoch, sent.Epoch);
            int node = NodeOf(ring, sent.Authority);
            nodesUsed.Add(node);
            foreach (ulong key in sent.Keys) Assert.Equal(node, ring.PrimaryOf(hash, key));
        }
        Assert.True(data > 20, $"{data} data requests");
        Assert.Equal(3, nodesUsed.Count);

        // Each node keeps exactly the rows it is primary of: nothing went through a node that forwarded it.
        var expected = new long[3];
        foreach (ulong key in pushed) expected[ring.PrimaryOf(hash, key)]++;
        for (int i = 1; i <= 3; i++) Assert.Equal(expected[ring.NodeIndex($"n{i}")], await fixture.LocalRowsAsync(i, table));
        Assert.Equal((await reference.GetTableAsync(table)).Rows, pushed.Count);
    }

    [Fact]
    public async Task ADenseRangeReachesEachNodeInOneRequestWhateverItsRuns()
    {
        var recorder = new RecordingHandler();
        using var http = new HttpClient(recorder) { BaseAddress = fixture.Cluster.Http(1) };
        using var smart = new ParamDbClient(http);
        const string table = "runs";
        await CreateAsync(smart, table);
        await smart.PullAsync(table, new ulong[] { 1 }, new float[Dim]);   // fetches the ring first
        recorder.Requests.Clear();

        // 2^20 rows: 256 blocks, so each node owns many runs of blocks.
        const int count = 1 << 20;
        float[] values = new float[count * Dim];
        for (int i = 0; i < values.Length; i++) values[i] = i % 7;
        PushResult pushed = await smart.PushRangeAsync(table, 5, values, Dim);
        Assert.Equal((count, (long)count), (pushed.Rows, pushed.Applied));

        var (_, ring) = await fixture.RingAsync();
        var authorities = recorder.Requests.Where(r => r.Path.EndsWith("/push", StringComparison.Ordinal)).Select(r => r.Authority).ToList();
        Assert.Equal(3, authorities.Count);
        Assert.Equal(3, authorities.Distinct().Count());
        Assert.Equal(count, recorder.Requests.Sum(r => r.Keys.Length));

        float[] back = await smart.PullRangeAsync(table, 5, count);
        var reference = new float[count * Dim];
        await using (var single = await Testing.RunningServer.StartAsync())
        {
            using var one = new ParamDbClient(single.Http1Uri);
            await one.CreateTableAsync(table, Schema);
            await one.PushRangeAsync(table, 5, values, Dim);
            await one.PullRangeAsync(table, 5, count, reference);
        }
        Assert.Equal(reference, back);
        Assert.Equal(0, smart.Ring.WrongNodeReplies);
        ulong hash = Ring.NameHash(table);
        foreach (RecordingHandler.Sent sent in recorder.Requests)
            foreach (ulong key in sent.Keys) Assert.Equal(NodeOf(ring, sent.Authority), ring.PrimaryOf(hash, key));
    }

    [Fact]
    public async Task TheSmartClientAndOneThatLetsANodeForwardGiveIdenticalRows()
    {
        var recorder = new RecordingHandler();
        using var forwardingHttp = new HttpClient(recorder) { BaseAddress = fixture.Cluster.Http(1) };
        using var forwarding = new ParamDbClient(forwardingHttp, new ParamDbClientOptions { Routing = ParamDbRouting.Off });
        using var smart = new ParamDbClient(fixture.Cluster.Http(1));
        await CreateAsync(smart, "smart");
        await CreateAsync(smart, "forwarded");

        var pushed = new HashSet<ulong>();
        await SameOperationsAsync(smart, "smart", forwarding, "forwarded", pushed, seed: 9);

        Assert.All(recorder.Requests, r => Assert.Equal(fixture.Cluster.Http(1).Authority, r.Authority));
        Assert.All(recorder.Requests, r => Assert.Null(r.Epoch));
        Assert.DoesNotContain(recorder.Requests, r => r.Path == "/v1/cluster");
        Assert.Null(forwarding.Ring.Current);
        // Both ways, every row is kept by its primary only.
        var (_, ring) = await fixture.RingAsync();
        foreach (string table in new[] { "smart", "forwarded" })
        {
            var expected = new long[3];
            foreach (ulong key in pushed) expected[ring.PrimaryOf(Ring.NameHash(table), key)]++;
            for (int i = 1; i <= 3; i++) Assert.Equal(expected[ring.NodeIndex($"n{i}")], await fixture.LocalRowsAsync(i, table));
        }
    }

    [Fact]
    public async Task AForgedRingIsRefusedWith421AndTheClientRefetchesItAndSucceeds()
    {
        using var smart = new ParamDbClient(fixture.Cluster.Http(3));
        using var reference = new ParamDbClient(fixture.Single.Http1Uri);
        const string table = "forged";
        await CreateAsync(smart, table);
        await reference.CreateTableAsync(table, Schema);
        var (view, ring) = await fixture.RingAsync();
        var random = new Random(3);

        // Every node holds another's tokens: nearly every slice is refused.
        smart.Ring.Set(ClusterFixture.Rotated(view));
        ulong[] keys = RandomKeys(random, 5_000, 1L << 40);
        float[] values = RandomRows(random, keys.Length);
        Assert.Equal(await reference.PushAsync(table, keys, values), await smart.PushAsync(table, keys, values));
        Assert.True(smart.Ring.WrongNodeReplies > 0);
        Assert.True(smart.Ring.Refreshes >= 1);
        Assert.Equal(view.Epoch, smart.Ring.Current!.Epoch);
        ClusterRing refreshed = smart.Ring.Current.Ring;
        foreach (ClusterNode node in view.Nodes) Assert.Equal(node.Tokens, refreshed.TokenStrings(refreshed.NodeIndex(node.Id)));

        // A pull sliced by the forged ring: refused, refetched, pulled again whole.
        smart.Ring.Set(ClusterFixture.Rotated(view));
        long refused = smart.Ring.WrongNodeReplies;
        Assert.Equal(await reference.PullAsync(table, keys), await smart.PullAsync(table, keys));
        Assert.True(smart.Ring.WrongNodeReplies > refused);

        // The ring from before n3 joined: slices holding n3's keys are refused, the others applied; the refused keys
        // alone are sent again, so every row is applied once.
        smart.Ring.Set(ClusterFixture.Without(view, "n3"));
        refused = smart.Ring.WrongNodeReplies;
        float[] rangeValues = RandomRows(random, 50_000);
        Assert.Equal(await reference.PushRangeAsync(table, 9_999, rangeValues, Dim), await smart.PushRangeAsync(table, 9_999, rangeValues, Dim));
        Assert.True(smart.Ring.WrongNodeReplies > refused);
        Assert.Equal(await reference.PullRangeAsync(table, 0, 70_000), await smart.PullRangeAsync(table, 0, 70_000));
        Assert.Equal(await reference.PullAsync(table, keys), await smart.PullAsync(table, keys));

        ulong hash = Ring.NameHash(table);
        var expected = new long[3];
        foreach (ulong key in keys.Concat(Enumerable.Range(0, 50_000).Select(i => 9_999UL + (ulong)i)).Distinct()) expected[ring.PrimaryOf(hash, key)]++;
        for (int i = 1; i <= 3; i++) Assert.Equal(expected[ring.NodeIndex($"n{i}")], await fixture.LocalRowsAsync(i, table));
    }

    [Fact]
    public async Task OverHttp2WithLz4TheClientRoutesToEachNodesH2PortAndRecoversFrom421()
    {
        using var h2 = new ParamDbClient(fixture.H2(2), new ParamDbClientOptions { HttpVersion = System.Net.HttpVersion.Version20, Compression = ParamDbCompression.Lz4 });
        using var reference = new ParamDbClient(fixture.Single.Http1Uri);
        const string table = "h2lz4";
        await CreateAsync(h2, table);
        await reference.CreateTableAsync(table, Schema);
        var (view, _) = await fixture.RingAsync();
        var random = new Random(21);
        ulong[] keys = RandomKeys(random, 8_000, 1L << 40);
        float[] values = new float[keys.Length * Dim];
        for (int i = 0; i < values.Length; i += 10) values[i] = (float)random.NextDouble();   // sparse: LZ4 shrinks it

        Assert.Equal(await reference.PushAsync(table, keys, values), await h2.PushAsync(table, keys, values));
        Assert.Equal(0, h2.Ring.WrongNodeReplies);
        Assert.All(h2.Ring.Current!.Rest, u => Assert.Equal(fixture.Cluster.BasePort + 1, u!.Port));

        h2.Ring.Set(ClusterFixture.Rotated(view));
        Assert.Equal(await reference.PushRangeAsync(table, 40_000, values, Dim), await h2.PushRangeAsync(table, 40_000, values, Dim));
        Assert.True(h2.Ring.WrongNodeReplies > 0);
        Assert.Equal(await reference.PullAsync(table, keys), await h2.PullAsync(table, keys));
        Assert.Equal(await reference.PullRangeAsync(table, 30_000, 20_000), await h2.PullRangeAsync(table, 30_000, 20_000));
    }

    [Fact]
    public async Task OnASingleNodeEveryCallGoesWholeToItWithoutAnEpoch()
    {
        var recorder = new RecordingHandler();
        using var http = new HttpClient(recorder) { BaseAddress = fixture.Single.Http1Uri };
        using var client = new ParamDbClient(http);
        const string table = "single";
        await client.CreateTableAsync(table, Schema);
        ulong[] keys = [.. Enumerable.Range(0, 10_000).Select(i => (ulong)i * 977)];
        await client.PushAsync(table, keys, new float[keys.Length * Dim]);
        await client.PullAsync(table, keys);
        await client.PushRangeAsync(table, 0, new float[100_000 * Dim], Dim);
        await client.PullRangeAsync(table, 0, 100_000);

        Assert.Equal(1, recorder.Requests.Count(r => r.Path == "/v1/cluster"));
        var data = recorder.Requests.Where(r => r.Path.StartsWith("/v1/tables/single/", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, data.Count);
        Assert.All(data, r => Assert.Null(r.Epoch));
        Assert.All(data, r => Assert.Equal(fixture.Single.Http1Uri.Authority, r.Authority));
        Assert.Equal(1, client.Ring.Current!.NodeCount);
        Assert.False(client.Ring.Current.RoutesRest);
    }

    private static int NodeOf(ClusterRing ring, string authority)
    {
        // 127.0.0.i:port is node n{i}.
        string host = authority[..authority.IndexOf(':')];
        return ring.NodeIndex("n" + host[(host.LastIndexOf('.') + 1)..]);
    }
}
