using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;

namespace ParamDb.Client.Tests;

/// <summary>
/// <see cref="ParamDbWorker"/> against three real nodes: one stream per node, every clock reaching every node (ticks
/// where a worker has no keys), sequential pulls across workers registered at different nodes, and exactly-once pushes
/// through a 421 and through a retry at the same clock.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterWorkerTests(ClusterFixture fixture)
{
    private static readonly ParamDbWorkerOptions Options = new()
    {
        Stream = new ParamDbStreamOptions { ClockWaitTimeout = TimeSpan.FromSeconds(20) },
    };

    private async Task CreateAddTableAsync(string table, int dim)
    {
        using var client = new ParamDbClient(fixture.Cluster.Http(1));
        await ClusterFixture.WithLeaderAsync(() => client.CreateTableAsync(table, new TableSchema
        {
            Dim = dim,
            Init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = 0f },
            Updater = new UpdaterSpec { Kind = UpdaterSpec.Add },
        }));
        await fixture.VisibleEverywhereAsync(table);
    }

    private static ulong[] SpreadKeys(int count, int seed)
    {
        var random = new Random(seed);
        var set = new SortedSet<ulong>();
        while (set.Count < count) set.Add((ulong)random.NextInt64(1L << 36));
        return [.. set];
    }

    [Fact]
    public async Task TwoWorkersAtDifferentNodesSeeEveryPushOfThePreviousClockWithSequentialPulls()
    {
        const string table = "bsp";
        await CreateAddTableAsync(table, dim: 1);
        var (_, ring) = await fixture.RingAsync();
        ulong hash = Ring.NameHash(table);
        int n2 = ring.NodeIndex("n2");

        // A pushes keys on every node; B only keys whose primary is n2, so n1 and n3 learn B's clocks from its ticks
        // alone — without them, A's sequential pulls there would wait for B until they time out.
        ulong[] keysA = SpreadKeys(2_000, seed: 1);
        var onN2 = keysA.Where(k => ring.PrimaryOf(hash, k) == n2).Take(100).ToList();
        onN2.AddRange(SpreadKeys(3_000, seed: 2).Where(k => ring.PrimaryOf(hash, k) == n2).Take(200));
        ulong[] keysB = [.. new SortedSet<ulong>(onN2)];
        ulong[] all = [.. new SortedSet<ulong>(keysA.Concat(keysB))];
        var inA = new HashSet<ulong>(keysA);
        var inB = new HashSet<ulong>(keysB);

        await using ParamDbWorker a = await ClusterFixture.WithLeaderAsync(() => ParamDbWorker.RegisterAsync(fixture.H2(1), "a", [table], options: Options));
        await using ParamDbWorker b = await ClusterFixture.WithLeaderAsync(() => ParamDbWorker.RegisterAsync(fixture.H2(3), "b", [table], options: Options));
        Assert.True(a.Ring.Current!.RoutesStream);
        const int clocks = 4;

        async Task RunAsync(ParamDbWorker self, ulong[] mine, float value, Func<ulong, bool> mineHas, Func<ulong, bool> otherHas, float otherValue)
        {
            float[] grads = [.. Enumerable.Repeat(value, mine.Length)];
            float[] rows = new float[all.Length];
            for (ulong c = 1; c <= clocks; c++)
            {
                PullResult pulled = await self.PullAsync(table, all, rows, new ParamDbCallOptions { Consistency = Consistency.Sequential });
                Assert.True(pulled.ClockMin >= c - 1, $"clock min {pulled.ClockMin} at clock {c}");
                for (int i = 0; i < all.Length; i++)
                {
                    // Own pushes: exactly c - 1. The other's: c - 1, or c if it is already ahead.
                    float own = mineHas(all[i]) ? value * (c - 1) : 0;
                    float rest = rows[i] - own;
                    if (!otherHas(all[i])) Assert.Equal(0f, rest);
                    else Assert.True(rest == otherValue * (c - 1) || rest == otherValue * c, $"key {all[i]} at clock {c}: {rows[i]}");
                }
                await self.PushAsync(table, mine, grads);
                await self.EndIterationAsync();
            }
        }

        await Task.WhenAll(
            Task.Run(() => RunAsync(a, keysA, 1f, inA.Contains, inB.Contains, 1000f)),
            Task.Run(() => RunAsync(b, keysB, 1000f, inB.Contains, inA.Contains, 1f)));

        float[] final = await a.PullAsync(table, all, new ParamDbCallOptions { Consistency = Consistency.Sequential });
        for (int i = 0; i < all.Length; i++)
            Assert.Equal((inA.Contains(all[i]) ? clocks : 0) + (inB.Contains(all[i]) ? 1000f * clocks : 0), final[i]);
        Assert.Equal((0L, 0L), (a.Ring.WrongNodeReplies, b.Ring.WrongNodeReplies));
    }

    [Fact]
    public async Task APushRefusedBecauseOfAStaleRingIsSentAgainAtTheSameClockAndAppliedOnce()
    {
        const string table = "stale";
        await CreateAddTableAsync(table, dim: 2);
        var (view, ring) = await fixture.RingAsync();
        await using ParamDbWorker worker = await ClusterFixture.WithLeaderAsync(() => ParamDbWorker.RegisterAsync(fixture.H2(2), "stale", [table], options: Options));

        // The ring from before n3 joined: n3's keys land in n1's and n2's slices, which are refused.
        worker.Ring.Set(ClusterFixture.Without(view, "n3"));
        ulong[] keys = SpreadKeys(5_000, seed: 3);
        float[] ones = [.. Enumerable.Repeat(1f, keys.Length * 2)];
        PushResult pushed = await worker.PushAsync(table, keys, ones);
        Assert.Equal((keys.Length, (long)keys.Length), (pushed.Rows, pushed.Applied));
        Assert.True(worker.Ring.WrongNodeReplies > 0);
        Assert.Equal(view.Epoch, worker.Ring.Current!.Epoch);
        Assert.All(await worker.PullAsync(table, keys), v => Assert.Equal(1f, v));

        // The same (worker, clock) again, whole, through the registration node, which routes it: every node skips it.
        PushResult again = await worker.Stream.PushAsync(table, keys, ones, new ClockStamp(worker.Id, 1));
        Assert.Equal(0, again.Applied);
        Assert.All(await worker.PullAsync(table, keys), v => Assert.Equal(1f, v));
        await worker.EndIterationAsync();

        // A dense range and a push-pull at the next clocks, by the fresh ring.
        float[] range = [.. Enumerable.Repeat(1f, 40_000 * 2)];
        Assert.Equal(40_000, (await worker.PushRangeAsync(table, 100, range, 2)).Applied);
        await worker.EndIterationAsync();
        float[] seen = new float[keys.Length * 2];
        PushPullResult both = await worker.PushPullAsync(table, keys, ones, seen);
        Assert.Equal(keys.Length, both.Push.Applied);
        for (int i = 0; i < keys.Length; i++)
        {
            float expected = 2f + (keys[i] is >= 100 and < 40_100 ? 1f : 0f);
            Assert.Equal(expected, seen[2 * i]);
        }
        Assert.All(await worker.PullRangeAsync(table, 100, 40_000), v => Assert.True(v >= 1f));

        ulong hash = Ring.NameHash(table);
        var expectedRows = new long[3];
        foreach (ulong key in keys.Concat(Enumerable.Range(0, 40_000).Select(i => 100UL + (ulong)i)).Distinct()) expectedRows[ring.PrimaryOf(hash, key)]++;
        for (int i = 1; i <= 3; i++) Assert.Equal(expectedRows[ring.NodeIndex($"n{i}")], await fixture.LocalRowsAsync(i, table));
    }

    [Fact]
    public async Task WithRoutingOffAWorkerSendsEverythingToItsNodeAndGetsTheSameRows()
    {
        const string table = "unrouted";
        await CreateAddTableAsync(table, dim: 1);
        ulong[] keys = SpreadKeys(3_000, seed: 4);
        float[] ones = [.. Enumerable.Repeat(1f, keys.Length)];
        await using ParamDbWorker routed = await ClusterFixture.WithLeaderAsync(() => ParamDbWorker.RegisterAsync(fixture.H2(1), "routed", [table], options: Options));
        await using ParamDbWorker forwarded = await ClusterFixture.WithLeaderAsync(() => ParamDbWorker.RegisterAsync(fixture.H2(1), "forwarded", [table],
            options: Options with { Routing = ParamDbRouting.Off }));
        Assert.Null(forwarded.Ring.Current);
        // A node forwards a worker's push to its peers at once, but they learn of a registration only when they apply
        // it: wait for that, as the routing worker does when it registers (else the peers refuse worker_not_found).
        for (int i = 1; i <= 3; i++)
        {
            using var node = new ParamDbClient(fixture.Cluster.Http(i), new ParamDbClientOptions { Routing = ParamDbRouting.Off });
            await Eventually.TrueAsync(async () => (await node.ListWorkersAsync()).Any(w => w.Worker == forwarded.Id), $"worker {forwarded.Id} on n{i}");
        }
        for (int c = 0; c < 3; c++)
        {
            await routed.PushAsync(table, keys, ones);
            await forwarded.PushAsync(table, keys, ones);
            await routed.EndIterationAsync();
            await forwarded.EndIterationAsync();
        }
        var sequential = new ParamDbCallOptions { Consistency = Consistency.Sequential };
        float[] viaRouted = await routed.PullAsync(table, keys, sequential);
        Assert.Equal(viaRouted, await forwarded.PullAsync(table, keys, sequential));
        Assert.All(viaRouted, v => Assert.Equal(6f, v));
    }
}

/// <summary>A node that goes away mid-push: its own cluster, since a node is stopped and started again.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterWorkerRetryTests : IAsyncLifetime
{
    private LocalCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await ClusterFixture.StartClusterAsync();

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task APushToANodeThatStopsIsSentToItsBackupsAtTheSameClockAndEveryRowIsAppliedOnce()
    {
        const string table = "retry";
        using (var client = new ParamDbClient(_cluster.Http(1)))
        {
            await ClusterFixture.WithLeaderAsync(() => client.CreateTableAsync(table, new TableSchema
            {
                Dim = 1,
                Init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = 0f },
                Updater = new UpdaterSpec { Kind = UpdaterSpec.Add },
            }));
        }
        for (int i = 1; i <= 3; i++)
        {
            using HttpClient node = _cluster.Client(i);
            await Eventually.TrueAsync(async () => (await node.GetAsync($"v1/tables/{table}")).IsSuccessStatusCode, $"table on n{i}");
        }
        ClusterRing ring = ClusterRing.FromView(await _cluster.ViewAsync(1));
        ulong hash = Ring.NameHash(table);
        var random = new Random(8);
        ulong[] keys = [.. new SortedSet<ulong>(Enumerable.Range(0, 3_000).Select(_ => (ulong)random.NextInt64(1L << 36)))];
        float[] ones = [.. Enumerable.Repeat(1f, keys.Length)];
        Assert.Contains(keys, k => ring.PrimaryOf(hash, k) == ring.NodeIndex("n3"));   // n3's part matters

        var options = new ParamDbWorkerOptions
        {
            Stream = new ParamDbStreamOptions { MaxRetries = 1, RetryBackoff = TimeSpan.FromMilliseconds(50), ConnectTimeout = TimeSpan.FromSeconds(2) },
        };
        await using ParamDbWorker worker = await ClusterFixture.WithLeaderAsync(() => ParamDbWorker.RegisterAsync(new Uri($"http://127.0.0.1:{_cluster.BasePort + 1}/"), "retry", [table], TimeSpan.FromSeconds(60), options));
        Assert.Equal(keys.Length, (await worker.PushAsync(table, keys, ones)).Applied);
        await worker.EndIterationAsync();

        // n3 stops mid-training: its part of clock 2 fails (refused connections) until the leader declares it down,
        // then goes again, at the same clock, to the backups that took its arcs. n1 and n2 applied theirs once.
        await _cluster.StopNodeAsync(3);
        PushResult during = await worker.PushAsync(table, keys, ones);
        Assert.Equal(keys.Length, during.Applied);
        Assert.All(await worker.PullAsync(table, keys), v => Assert.Equal(2f, v));
        Assert.True(worker.Ring.Refreshes > 0);
        await worker.EndIterationAsync();

        // n3 comes back, catches up as a backup and serves its arcs again; the worker's ring is stale (n3 down), so
        // its first push of n3's keys is refused (421) by their backups and sent to n3 at the same clock.
        await _cluster.RestartNodeAsync(3);
        await Eventually.TrueAsync(async () => await _cluster.ViewAsync(1) is { UnderReplicated: 0 } view && view.Nodes.All(n => n.State == NodeState.Up), "n3 up again", TimeSpan.FromSeconds(60));
        Assert.Equal(keys.Length, (await worker.PushAsync(table, keys, ones)).Applied);
        Assert.All(await worker.PullAsync(table, keys), v => Assert.Equal(3f, v));
    }
}
