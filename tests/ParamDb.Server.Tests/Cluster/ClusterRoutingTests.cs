using System.Net;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Three real nodes in this process on 127.0.0.1–3 (docs/cluster.md): tables through the server manager, pushes
/// and pulls through any node, 421 for a client that sliced by a ring the node does not share.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterRoutingTests : IAsyncLifetime
{
    private LocalCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await LocalCluster.StartAsync(3);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task ThreeNodesFormOneRingAndATableCreatedOnAnyNodeIsVisibleOnAll()
    {
        ClusterView view = await _cluster.ViewAsync(3);
        Assert.Equal(["n1", "n2", "n3"], view.Nodes.Select(n => n.Id));
        Assert.All(view.Nodes, n => Assert.Equal((NodeState.Up, 64), (n.State, n.Tokens.Length)));
        Assert.Equal((3UL, 2, 64), (view.Epoch, view.Replicas, view.VirtualNodes));
        Assert.Contains(view.Leader, view.Nodes.Select(n => n.Id));
        for (int i = 1; i <= 3; i++)
        {
            ClusterView other = await _cluster.ViewAsync(i);
            Assert.Equal(view.Epoch, other.Epoch);
            Assert.Equal(view.Nodes.SelectMany(n => n.Tokens), other.Nodes.SelectMany(n => n.Tokens));
        }

        using HttpClient n3 = _cluster.Client(3);
        await Wire.CreateTableAsync(n3, "emb", """{"dim":4}""");   // on a follower: handed to the leader
        for (int i = 1; i <= 3; i++)
        {
            using HttpClient client = _cluster.Client(i);
            using var reply = await client.GetAsync("v1/tables/emb");
            Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        }
    }

    [Fact]
    public async Task PushesThroughAnyNodeAndPullsThroughAnyOtherAgreeWithASingleNode()
    {
        await using RunningServer single = await RunningServer.StartAsync();
        using HttpClient reference = single.CreateClient();
        const int dim = 3;
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":3,"updater":{"kind":"sgd","lr":0.5}}""");
        await Wire.CreateTableAsync(reference, "t", """{"dim":3,"updater":{"kind":"sgd","lr":0.5}}""");
        var random = new Random(17);
        for (int round = 0; round < 6; round++)
        {
            ulong[] keys = [.. Enumerable.Range(0, 500).Select(_ => (ulong)random.NextInt64(1L << 36)).Distinct().Order()];
            float[] values = [.. Enumerable.Range(0, keys.Length * dim).Select(_ => (float)random.NextDouble())];
            using HttpClient pusher = _cluster.Client(1 + round % 3);
            PushResult routed = await Wire.PushAsync(pusher, "t", keys, values, dim);
            await Wire.PushAsync(reference, "t", keys, values, dim);
            Assert.Equal((keys.Length, (long)keys.Length), (routed.Rows, routed.Applied));

            using HttpClient puller = _cluster.Client(1 + (round + 1) % 3);
            ulong[] asked = [.. keys.Take(300).Concat(Enumerable.Range(0, 50).Select(_ => (ulong)random.NextInt64(1L << 36))).Distinct().Order()];
            Assert.Equal(await Wire.PullAsync(reference, "t", asked), await Wire.PullAsync(puller, "t", asked));
        }
        // Rows are spread: every node holds some, and the table's count is their sum.
        var rows = new long[3];
        for (int i = 1; i <= 3; i++) rows[i - 1] = await _cluster.OwnRowsAsync(i, "t");   // this node's own
        Assert.All(rows, r => Assert.True(r > 0));
        Assert.Equal((await reference.GetFromJsonAsync("v1/tables/t", ProtocolJson.Default.TableInfo))!.Rows, rows.Sum());
        Assert.Equal(rows.Sum(), (await n1.GetFromJsonAsync("v1/tables/t", ProtocolJson.Default.TableInfo))!.Rows);
    }

    [Fact]
    public async Task AKeyTheNodeDoesNotOwnGets421WithItsEpochAndTheRefreshedRingServesIt()
    {
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":2}""");
        ulong[] keys = [123_456_789];
        await Wire.PushAsync(n1, "t", keys, [1f, 2f], 2);   // routed to the key's primary

        ClusterRing ring = ClusterRing.FromView(await _cluster.ViewAsync(1));
        int primary = ring.PrimaryOf(Ring.NameHash("t"), keys[0]);
        int wrong = (primary + 1) % 3;
        using HttpClient stranger = _cluster.Client(wrong + 1);
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/tables/t/pull") { Content = Wire.Kv(Wire.PullBlock(keys)) };
        request.Headers.Add(ParamDbHeaders.RingEpoch, ring.Epoch.ToString());
        using var refused = await stranger.SendAsync(request);
        string detail = await Wire.AssertProblemAsync(refused, 421, ProblemCodes.WrongNode);
        Assert.Equal(ring.Epoch.ToString(), refused.Headers.GetValues(ParamDbHeaders.RingEpoch).Single());
        Assert.Contains($"'{ring.Nodes[primary]}'", detail);

        using HttpClient owner = _cluster.Client(primary + 1);
        var retry = new HttpRequestMessage(HttpMethod.Post, "v1/tables/t/pull") { Content = Wire.Kv(Wire.PullBlock(keys)) };
        retry.Headers.Add(ParamDbHeaders.RingEpoch, ring.Epoch.ToString());
        using var served = await owner.SendAsync(retry);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(new float[] { 1f, 2f }, Wire.ValuesOf(await served.Content.ReadAsByteArrayAsync(), keys));
    }

    [Fact]
    public async Task ARequestSlicedByAnOlderRingEpochIs421EvenWhereTheNodeOwnsItsKeys()
    {
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        ClusterRing ring = ClusterRing.FromView(await _cluster.ViewAsync(1));
        ulong[] keys = [99];
        int primary = ring.PrimaryOf(Ring.NameHash("t"), keys[0]);
        using HttpClient owner = _cluster.Client(primary + 1);
        foreach (var (path, block) in new[] { ("v1/tables/t/pull", Wire.PullBlock(keys)), ("v1/tables/t/push", Wire.PushBlock(keys, [1f], 1)) })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Wire.Kv(block) };
            request.Headers.Add(ParamDbHeaders.RingEpoch, (ring.Epoch - 1).ToString());
            using var stale = await owner.SendAsync(request);
            string detail = await Wire.AssertProblemAsync(stale, 421, ProblemCodes.WrongNode);
            Assert.Contains($"epoch {ring.Epoch - 1}", detail);
            Assert.Equal(ring.Epoch.ToString(), stale.Headers.GetValues(ParamDbHeaders.RingEpoch).Single());
        }
        Assert.Equal(new float[] { 0f }, await Wire.PullAsync(n1, "t", keys));   // the refused push changed nothing
    }

    [Fact]
    public async Task AWorkerRegisteredThroughOneNodeCanPushThroughAnotherAtOnce()
    {
        using HttpClient n2 = _cluster.Client(2), n3 = _cluster.Client(3);
        await Wire.CreateTableAsync(n2, "t", """{"dim":1}""");
        for (int round = 0; round < 5; round++)
        {
            uint worker = await RegisterAsync(n2, $"w{round}");
            await PushAsync(n3, worker, 1, [(ulong)round, 1UL << 30, 1UL << 40]);   // reaches every node at once
        }
    }

    [Fact]
    public async Task AWorkerWhoseLeaseEndsIsRemovedFromEveryNodeByTheLeaderWhileOneThatBeatsStays()
    {
        using HttpClient n1 = _cluster.Client(1), n2 = _cluster.Client(2), n3 = _cluster.Client(3);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        uint silent = await RegisterAsync(n2, "silent", leaseMs: 300);
        uint beating = await RegisterAsync(n3, "beating", leaseMs: 1500);
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        HttpClient[] nodes = [n1, n2, n3];
        while (true)
        {
            // The worker that keeps beating, through one node, must stay on all of them.
            using (var beat = await n3.PostAsync($"v1/workers/{beating}/heartbeat", null)) Assert.Equal(HttpStatusCode.OK, beat.StatusCode);
            bool gone = true;
            foreach (HttpClient node in nodes)
            {
                WorkerList list = (await node.GetFromJsonAsync("v1/workers", ProtocolJson.Default.WorkerList))!;
                Assert.Contains(list.Workers, w => w.Worker == beating);
                gone &= list.Workers.All(w => w.Worker != silent);
            }
            if (gone) break;
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(20), "the silent worker was still registered after 20 s");
            await Task.Delay(100);
        }
        // Gone from every node at once, through the manager: a push stamped with it is refused everywhere.
        foreach (HttpClient node in nodes)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "v1/tables/t/push") { Content = Wire.Kv(Wire.PushBlock([1], [1f], 1)) };
            request.Headers.Add(ParamDbHeaders.Worker, silent.ToString());
            request.Headers.Add(ParamDbHeaders.Clock, "1");
            using var refused = await node.SendAsync(request);
            await Wire.AssertProblemAsync(refused, 404, ProblemCodes.WorkerNotFound);
        }
    }

    [Fact]
    public async Task ASequentialPullThroughOneNodeWaitsForAStragglerThatPushesThroughAnother()
    {
        using HttpClient n1 = _cluster.Client(1), n2 = _cluster.Client(2), n3 = _cluster.Client(3);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        uint fast = await RegisterAsync(n1, "fast"), slow = await RegisterAsync(n3, "slow");
        ulong[] keys = [.. Enumerable.Range(0, 64).Select(i => (ulong)i << 20)];   // spread over the nodes
        for (ulong clock = 1; clock <= 3; clock++) await PushAsync(n1, fast, clock, keys);
        await PushAsync(n3, slow, 1, keys);

        // At clock 3 a sequential pull needs everyone at 2: the slow worker is at 1.
        using var early = await PullAsync(n2, fast, 3, keys, timeoutMs: 200);
        string detail = await Wire.AssertProblemAsync(early, 408, ProblemCodes.ClockWaitTimeout);
        Assert.Contains($"worker {slow}", detail);

        Task<HttpResponseMessage> waiting = PullAsync(n2, fast, 3, keys, timeoutMs: 30_000);
        await PushAsync(n3, slow, 2, keys);
        using HttpResponseMessage done = await waiting;
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        // Every key got fast's 3 pushes and slow's 2, by the add updater: 5 each.
        Assert.All(Wire.ValuesOf(await done.Content.ReadAsByteArrayAsync(), keys), v => Assert.Equal(5f, v));
        Assert.Equal("2", done.Headers.GetValues(ParamDbHeaders.ClockMin).Single());
    }

    [Fact]
    public async Task ACheckpointThroughOneNodeCheckpointsEveryNode()
    {
        using HttpClient n2 = _cluster.Client(2);
        using var reply = await n2.PostAsync("v1/checkpoint", null);
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        for (int i = 1; i <= 3; i++)
        {
            using HttpClient client = _cluster.Client(i);
            HealthReply health = (await client.GetFromJsonAsync("v1/health", ProtocolJson.Default.HealthReply))!;
            Assert.NotNull(health.LastCheckpoint);
        }
    }

    [Fact]
    public async Task ClusterStatusPrintsEveryNodeItsRangesAndRowsAndTheLeader()
    {
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        ulong[] keys = [.. Enumerable.Range(0, 3000).Select(i => (ulong)i << 12)];
        await Wire.PushAsync(n1, "t", keys, Wire.Fill(keys.Length, 1f), 1);

        var output = new StringWriter();
        var error = new StringWriter();
        int code = await ParamDb.Server.Cli.Commands.RunAsync(["cluster", "status", "--url", _cluster.Http(2).ToString()], new ParamDb.Server.Cli.CliConsole(output, error, ErrorIsTerminal: false));
        Assert.True(code == 0, error.ToString());
        string text = output.ToString();
        ClusterView view = await _cluster.ViewAsync(2);
        Assert.Contains($"ring epoch {view.Epoch} · leader {view.Leader}", text);
        long total = 0;
        foreach (ClusterNode node in view.Nodes)
        {
            string line = text.Split('\n').Single(l => l.StartsWith(node.Id + " ", StringComparison.Ordinal));
            Assert.Contains(node.Http!, line);
            Assert.Contains(" 64 ", line);
            total += long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1].Replace(",", ""));
        }
        Assert.Equal(keys.Length, total);
        Assert.Contains("rows per node within ±", text);
    }

    private static async Task<uint> RegisterAsync(HttpClient http, string name, int leaseMs = 60_000)
    {
        // A cluster between leaders answers 503 no_leader, which changed nothing: asked again. Anything else is final.
        long deadline = Environment.TickCount64 + 10_000;
        HttpResponseMessage reply;
        string body;
        while (true)
        {
            reply = await http.PostAsync("v1/workers", Wire.Json($$"""{"name":"{{name}}","tables":["t"],"leaseMs":{{leaseMs}}}"""));
            body = await reply.Content.ReadAsStringAsync();
            if (reply.StatusCode != HttpStatusCode.ServiceUnavailable || !body.Contains(ProblemCodes.NoLeader) || Environment.TickCount64 > deadline) break;
            reply.Dispose();
            await Task.Delay(100);
        }
        using var _ = reply;
        Assert.True(reply.StatusCode == HttpStatusCode.Created, $"{(int)reply.StatusCode} {body}");
        return (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.WorkerInfo))!.Worker;
    }

    private static async Task PushAsync(HttpClient http, uint worker, ulong clock, ulong[] keys)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/tables/t/push") { Content = Wire.Kv(Wire.PushBlock(keys, Wire.Fill(keys.Length, 1f), 1)) };
        request.Headers.Add(ParamDbHeaders.Worker, worker.ToString());
        request.Headers.Add(ParamDbHeaders.Clock, clock.ToString());
        using var reply = await http.SendAsync(request);
        Assert.True(reply.IsSuccessStatusCode, await reply.Content.ReadAsStringAsync());
    }

    private static Task<HttpResponseMessage> PullAsync(HttpClient http, uint worker, ulong clock, ulong[] keys, int timeoutMs)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/tables/t/pull") { Content = Wire.Kv(Wire.PullBlock(keys)) };
        request.Headers.Add(ParamDbHeaders.Worker, worker.ToString());
        request.Headers.Add(ParamDbHeaders.Clock, clock.ToString());
        request.Headers.Add(ParamDbHeaders.Consistency, "sequential");
        request.Headers.Add(ParamDbHeaders.TimeoutMs, timeoutMs.ToString());
        return http.SendAsync(request);
    }

    [Fact]
    public async Task EveryNodesStoreKeepsAClockForEveryArcOfTheRingAndServesTheArcsItIsPrimaryFor()
    {
        ClusterView view = await _cluster.ViewAsync(1);
        ulong[] all = [.. view.Nodes.SelectMany(n => n.Tokens.Select(t => ulong.Parse(t, System.Globalization.CultureInfo.InvariantCulture))).Order()];
        for (int i = 1; i <= 3; i++)
        {
            var host = (Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Hosting.StoreHost>(_cluster[i].Services));
            var store = (Storage.ParamStore)host.Node!.Storage;
            // Applied off the Raft apply path, after the last join's epoch: wait for it with a deadline.
            long deadline = Environment.TickCount64 + 10_000;
            while (!store.Ranges.Tokens.SequenceEqual(all) && Environment.TickCount64 < deadline) await Task.Delay(50);
            Assert.Equal(all, store.Ranges.Tokens.ToArray());
            foreach (var node in view.Nodes)
                foreach (string token in node.Tokens)
                    Assert.Equal(node.Id == $"n{i}", store.Serves(ulong.Parse(token, System.Globalization.CultureInfo.InvariantCulture)));
        }
    }
}
