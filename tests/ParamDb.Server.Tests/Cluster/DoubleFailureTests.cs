using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using ParamDb.Testing.History;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Two nodes lost at once (docs/replication.md): five real nodes at R = 3, a clocked worker pushing throughout. One
/// node is killed with SIGKILL and, before the leader has declared it down, a second: the Raft leader itself (the
/// new leader must carry the failover on) or another node. Every arc keeps a live copy, so pushes go on; every
/// acknowledged push is still there, on every node, after the two come back and catch up.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DoubleFailureTests(ITestOutputHelper output) : IDisposable
{
    private const int Nodes = 5;
    private readonly ProcessCluster _cluster = new(Nodes);
    private readonly HistoryRecorder _history = new();

    public void Dispose() => _cluster.Dispose();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TwoNodesKilledOneAfterTheOtherAtR3LoseNoAcknowledgedPush(bool secondIsTheLeader)
    {
        await _cluster.StartAsync(1, null, "--cluster-init", "--replicas", "3");
        for (int i = 2; i <= Nodes; i++) await _cluster.StartAsync(i, null, _cluster.Join);
        int[] everyone = [.. Enumerable.Range(1, Nodes)];
        await _cluster.WaitForViewAsync(everyone, "five nodes up", v => v.Nodes.Count == Nodes && v.Nodes.All(n => n.State == NodeState.Up), TimeSpan.FromSeconds(60));
        using (HttpClient n1 = _cluster.Client(1)) await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        uint worker;
        using (HttpClient n1 = _cluster.Client(1)) worker = await ClockApiTests.RegisterAsync(n1, "trainer", leaseMs: 600_000);
        ClusterView view = (await _cluster.ViewAsync(1))!;
        ClusterRing ring = ClusterRing.FromView(view);
        ulong hash = Ring.NameHash("t");
        ulong[] keys = [.. Enumerable.Range(0, Nodes).SelectMany(n => Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k => ring.PrimaryOf(hash, k) == n).Take(5)).Order()];

        using var stop = new CancellationTokenSource();
        var pusher = new ClockedPusher(_cluster, Nodes, "t", worker, keys, _history);
        Task pushing = pusher.RunAsync(stop.Token);
        await WaitForPushesAsync(pusher, 20);

        // The first victim is not the leader; the second is the leader, or another node. Both die before the
        // leader has declared the first down (it takes half a second at least).
        int leader = int.Parse(view.Leader!.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
        int[] followers = [.. everyone.Where(i => i != leader)];
        int first = followers[^1];
        int second = secondIsTheLeader ? leader : followers[^2];
        int[] survivors = [.. everyone.Where(i => i != first && i != second)];
        pusher.Avoid(first);
        pusher.Avoid(second);
        long killed = Environment.TickCount64;
        await _cluster[first]!.KillAsync();
        await _cluster[second]!.KillAsync();
        await _cluster.WaitForViewAsync(survivors, $"n{first} and n{second} declared down", v =>
            v.Nodes.Single(n => n.Id == $"n{first}").State == NodeState.Down && v.Nodes.Single(n => n.Id == $"n{second}").State == NodeState.Down
            && v.Unavailable == 0, TimeSpan.FromSeconds(60));
        output.WriteLine($"n{first} and then n{second}{(secondIsTheLeader ? " (the Raft leader)" : "")} killed: both down {Environment.TickCount64 - killed} ms later");

        long before = pusher.Pushes;
        await WaitForPushesAsync(pusher, before + 20);
        using (await pusher.PauseAsync())
        {
            List<string> off = await pusher.CheckSumsAsync(survivors);
            Assert.True(off.Count == 0, $"with n{first} and n{second} down:\n{string.Join("\n", off)}\n{pusher.TakeTraces()}\n{string.Join("\n", _cluster.LogTails(40))}");
        }

        await _cluster.StartAsync(first, null);
        await _cluster.StartAsync(second, null);
        await _cluster.WaitForViewAsync(survivors, "both back, caught up and up", v => v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0, TimeSpan.FromSeconds(90));
        pusher.Revive(first);
        pusher.Revive(second);
        before = pusher.Pushes;
        await WaitForPushesAsync(pusher, before + 20);
        await stop.CancelAsync();
        await pushing;

        List<string> wrong = await pusher.CheckSumsAsync(everyone);
        Assert.True(wrong.Count == 0, $"after both came back:\n{string.Join("\n", wrong)}\n{string.Join("\n", _cluster.LogTails(40))}");
        foreach (ulong key in _history.Keys)
        {
            Verdict verdict = Linearizability.Check(_history.Of(key));
            Assert.True(verdict.IsLinearizable, $"key {key}: {verdict.Explanation}");
        }
        output.WriteLine($"{pusher.Pushes} pushes acknowledged ({pusher.Retries} retries), {_history.Count} operations checked, 0 lost, 0 applied twice");
    }

    private async Task WaitForPushesAsync(ClockedPusher pusher, long count)
    {
        long deadline = Environment.TickCount64 + 60_000;
        while (pusher.Pushes < count)
        {
            Assert.True(Environment.TickCount64 < deadline, $"{pusher.Pushes} of {count} pushes acknowledged within 60 s\n{pusher.TakeTraces()}\n{string.Join("\n", _cluster.LogTails(40))}");
            await Task.Delay(20);
        }
    }
}
