using Xunit.Abstractions;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Failure detection on real processes (docs/replication.md): the leader declares a node that stopped sending
/// heartbeats down, requests for its ranges are answered at once instead of waiting on a dead link, and the node
/// is up again once it returns.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LivenessTests(ITestOutputHelper output) : IDisposable
{
    private readonly ProcessCluster _cluster = new(3);

    public void Dispose() => _cluster.Dispose();

    private async Task<ClusterView> ViewAsync(int i)
    {
        using HttpClient http = _cluster.Client(i);
        return (await http.GetFromJsonAsync("v1/cluster", ProtocolJson.Default.ClusterView))!;
    }

    private async Task<ClusterView> WaitForStateAsync(int observer, string node, NodeState state)
    {
        long deadline = Environment.TickCount64 + 30_000;
        ClusterView view;
        do
        {
            view = await ViewAsync(observer);
            if (view.Nodes.Single(n => n.Id == node).State == state) return view;
            await Task.Delay(50);
        }
        while (Environment.TickCount64 < deadline);
        Assert.Fail($"n{observer} did not see {node} {state} within 30 s: {string.Join(", ", view.Nodes.Select(n => $"{n.Id} {n.State}"))}\n{string.Join("\n", _cluster.LogTails())}");
        return view;
    }

    /// <summary>Keys 0, 4096, 8192… (one per ring block) whose primary is <paramref name="node"/>, <paramref name="count"/> of them.</summary>
    private static ulong[] KeysOf(ClusterView view, string table, string node, int count)
    {
        ClusterRing ring = ClusterRing.FromView(view);
        ulong hash = Ring.NameHash(table);
        int index = ring.NodeIndex(node);
        return [.. Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k => ring.PrimaryOf(hash, k) == index).Take(count)];
    }

    [Fact]
    public async Task AKilledNodeIsDeclaredDownItsRangesAnswer503AtOnceAndItIsUpAgainWhenItReturns()
    {
        await _cluster.StartAsync(1, null, "--cluster-init", "--replicas", "1");
        await _cluster.StartAsync(2, null, _cluster.Join);
        await _cluster.StartAsync(3, null, _cluster.Join);
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        ClusterView view = await ViewAsync(1);
        ulong[] onN3 = KeysOf(view, "t", "n3", 20), onN1 = KeysOf(view, "t", "n1", 20);
        await Wire.PushAsync(n1, "t", onN3, Wire.Fill(onN3.Length, 1f), 1);

        long killed = Environment.TickCount64;
        await _cluster[3]!.KillAsync();
        ClusterView down = await WaitForStateAsync(1, "n3", NodeState.Down);
        output.WriteLine($"SIGKILL to n3 seen down by n1: {Environment.TickCount64 - killed} ms");
        Assert.True(down.Epoch > view.Epoch);
        Assert.Equal(64, down.Unavailable);   // n3's 64 arcs, with no copy elsewhere at R = 1

        // n3's ranges are refused without a try (the link is not even opened), and the rest still work.
        using (var reply = await n1.PostAsync("/v1/tables/t/push", Wire.Kv(Wire.PushBlock(onN3, Wire.Fill(onN3.Length, 5f), 1))))
        {
            string detail = await Wire.AssertProblemAsync(reply, 503, ProblemCodes.Unavailable);
            Assert.Contains("'n3' is down", detail);
        }
        await Wire.PushAsync(n1, "t", onN1, Wire.Fill(onN1.Length, 1f), 1);

        await _cluster.StartAsync(3, null);
        long listening = Environment.TickCount64;
        await WaitForStateAsync(1, "n3", NodeState.Up);
        output.WriteLine($"restarted n3 listening, seen up by n1: {Environment.TickCount64 - listening} ms");
        await Wire.PushAsync(n1, "t", onN3, Wire.Fill(onN3.Length, 2f), 1);
        Assert.All(await Wire.PullAsync(n1, "t", onN3), v => Assert.Equal(3f, v));   // 1 + 2: the refused 5 was never applied
        Assert.All(await Wire.PullAsync(n1, "t", onN1), v => Assert.Equal(1f, v));
    }

    [Fact]
    public async Task ANodeWithAnotherDownAfterThanTheLeaderIsGrantedNoLeaseAndIsDeclaredDown()
    {
        await _cluster.StartAsync(1, null, "--cluster-init", "--replicas", "1");
        await _cluster.StartAsync(2, null, [.. _cluster.Join, "--down-after", "2000"]);

        // Its heartbeats are refused with the reason, so it never acts for its ranges...
        using HttpClient n1 = _cluster.Client(1);
        using (var heartbeat = new HttpRequestMessage(HttpMethod.Post, "/v1/cluster/heartbeats?downAfter=2000") { Headers = { { "ParamDb-Peer", "n2" } } })
        using (var reply = await n1.SendAsync(heartbeat))
        {
            string detail = await Wire.AssertProblemAsync(reply, 409, ProblemCodes.DownAfterMismatch);
            Assert.Contains("--down-after", detail);
        }
        // ...and the leader, hearing none it could grant, declares it down; the node logs why.
        await WaitForStateAsync(1, "n2", NodeState.Down);
        long deadline = Environment.TickCount64 + 10_000;
        while (!string.Join("\n", _cluster.LogTails(400)).Contains(ProblemCodes.DownAfterMismatch) && Environment.TickCount64 < deadline) await Task.Delay(50);
        string logs = string.Join("\n", _cluster.LogTails(400));
        if (!logs.Contains(ProblemCodes.DownAfterMismatch)) output.WriteLine(logs);
        Assert.Contains(ProblemCodes.DownAfterMismatch, logs);
    }
}
