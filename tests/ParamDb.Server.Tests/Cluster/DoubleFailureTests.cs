using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using ParamDb.Testing.History;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Two nodes lost (docs/replication.md). At R = 3, at once: five real nodes, a clocked worker pushing throughout. One
/// node is killed with SIGKILL and, before the leader has declared it down, a second: the Raft leader itself (the
/// new leader must carry the failover on), another node, or a node that the first's failover promotes, which dies as
/// it is promoted (failpoint <c>promotion</c>). Every arc keeps a live copy, so pushes go on; every acknowledged push
/// is still there, on every node, after the two come back and catch up. At R = 2, one after the other in one chain:
/// see <see cref="AtR2TheNodeOfAChainThatLeftUpLastServesItAgainAndCatchesUpTheOther"/>.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DoubleFailureTests(ITestOutputHelper output) : IDisposable
{
    private const int Nodes = 5;
    private readonly ProcessCluster _cluster = new(Nodes);
    private readonly HistoryRecorder _history = new();

    public void Dispose() => _cluster.Dispose();

    /// <summary>How the second node goes.</summary>
    public enum Second
    {
        /// <summary>The Raft leader is killed.</summary>
        Leader,

        /// <summary>Another follower is killed.</summary>
        Node,

        /// <summary>Another follower kills itself when the first's failover promotes it.</summary>
        Promoted,
    }

    [Theory]
    [InlineData(Second.Leader)]
    [InlineData(Second.Node)]
    [InlineData(Second.Promoted)]
    public async Task TwoNodesLostOneAfterTheOtherAtR3LoseNoAcknowledgedPush(Second how)
    {
        // n1 leads (it formed the cluster); n4 is the second follower victim, so that is the one armed.
        await _cluster.StartAsync(1, null, "--cluster-init", "--replicas", "3");
        for (int i = 2; i <= Nodes; i++)
            await _cluster.StartAsync(i, how == Second.Promoted && i == Nodes - 1 ? new Dictionary<string, string> { [ParamDb.Storage.Failpoints.Variable] = $"{ParamDb.Storage.Failpoints.Promotion}=crash" } : null, _cluster.Join);
        int[] everyone = [.. Enumerable.Range(1, Nodes)];
        await _cluster.WaitForViewAsync(everyone, "five nodes up", v => v.Nodes.Count == Nodes && v.Nodes.All(n => n.State == NodeState.Up), TimeSpan.FromSeconds(60));
        (ClockedPusher pusher, ClusterRing ring) = await ClockedPusher.StartAsync(_cluster, Nodes, 5, _history);
        ClusterView view = (await _cluster.ViewAsync(1))!;

        using var stop = new CancellationTokenSource();
        Task pushing = pusher.RunAsync(stop.Token);
        await pusher.WaitForPushesAsync(20);

        // The first victim is not the leader; the second is the leader, or another node. Both die before the
        // leader has declared the first down (it takes half a second at least).
        int leader = int.Parse(view.Leader!.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
        int[] followers = [.. everyone.Where(i => i != leader)];
        int first = followers[^1];
        int second = how == Second.Leader ? leader : followers[^2];
        if (how == Second.Promoted) Assert.Equal(Nodes - 1, second);   // the armed one
        // n4 must back up some of n5's arcs first in line, or nothing promotes it.
        if (how == Second.Promoted)
        {
            int f = ring.NodeIndex($"n{first}"), s = ring.NodeIndex($"n{second}");
            Assert.Contains(Enumerable.Range(0, ring.Tokens.Length), i => ring.ReplicasAt(i)[0] == f && ring.ReplicasAt(i)[1] == s);
        }
        int[] survivors = [.. everyone.Where(i => i != first && i != second)];
        pusher.Avoid(first);
        pusher.Avoid(second);
        long killed = Environment.TickCount64;
        await _cluster[first]!.KillAsync();
        if (how == Second.Promoted)
        {
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _cluster[second]!.Process.WaitForExitAsync(exit.Token);   // it kills itself as n5's failover promotes it
        }
        else
        {
            await _cluster[second]!.KillAsync();
        }
        await _cluster.WaitForViewAsync(survivors, $"n{first} and n{second} declared down", v =>
            v.Nodes.Single(n => n.Id == $"n{first}").State == NodeState.Down && v.Nodes.Single(n => n.Id == $"n{second}").State == NodeState.Down
            && v.Unavailable == 0, TimeSpan.FromSeconds(60));
        output.WriteLine($"n{first} killed, then n{second} ({how}): both down {Environment.TickCount64 - killed} ms later");

        long before = pusher.Pushes;
        await pusher.WaitForPushesAsync(before + 20);
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
        await FinishAsync(pusher, stop, pushing, $"n{first} and n{second} lost");
    }

    /// <summary>
    /// Five nodes at R = 2 (so the Raft majority outlives two) with a clocked worker ready, and two of them that are
    /// a chain, neither the leader: <c>first</c> the owner of an arc whose next node is <c>last</c>.
    /// </summary>
    private async Task<(ClockedPusher Pusher, int First, int Last, int[] Survivors)> StartChainAtR2Async(Dictionary<string, string>? environment)
    {
        await _cluster.StartAsync(1, environment, "--cluster-init", "--replicas", "2");
        for (int i = 2; i <= Nodes; i++) await _cluster.StartAsync(i, environment, _cluster.Join);
        int[] everyone = [.. Enumerable.Range(1, Nodes)];
        await _cluster.WaitForViewAsync(everyone, "five nodes up", v => v.Nodes.Count == Nodes && v.Nodes.All(n => n.State == NodeState.Up), TimeSpan.FromSeconds(60));
        (ClockedPusher pusher, ClusterRing ring) = await ClockedPusher.StartAsync(_cluster, Nodes, 5, _history);
        ClusterView view = (await _cluster.ViewAsync(1))!;
        int leader = int.Parse(view.Leader!.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
        int first = everyone.Last(i => i != leader);
        int f = ring.NodeIndex($"n{first}");
        int last = everyone.First(i => i != leader && i != first
            && Enumerable.Range(0, ring.Tokens.Length).Any(t => ring.ReplicasAt(t)[0] == f && ring.ReplicasAt(t)[1] == ring.NodeIndex($"n{i}")));
        return (pusher, first, last, [.. everyone.Where(i => i != first && i != last)]);
    }

    /// <summary>Twenty more pushes with every node back, then every key's sum read through every node and the whole history checked.</summary>
    private async Task FinishAsync(ClockedPusher pusher, CancellationTokenSource stop, Task pushing, string what)
    {
        await pusher.WaitForPushesAsync(pusher.Pushes + 20);
        await stop.CancelAsync();
        await pushing;
        List<string> wrong = await pusher.CheckSumsAsync(Enumerable.Range(1, Nodes));
        Assert.True(wrong.Count == 0, $"after both came back:\n{string.Join("\n", wrong)}\n{string.Join("\n", _cluster.LogTails(40))}");
        HistoryAssert.Linearizable(_history);
        output.WriteLine($"{what}; {pusher.Pushes} pushes acknowledged ({pusher.Retries} retries), {_history.Count} operations checked, 0 lost, 0 applied twice");
    }

    /// <summary>
    /// Five nodes at R = 2 (so the Raft majority outlives two): a node dies, the node that took over its arcs dies
    /// too before any other node was sent a copy of them (the stand-ins' copies are held back a minute), and the
    /// arcs they shared are unavailable. The one that died first comes back first: its copy of those arcs is stale,
    /// so it stays joining. The one that died last comes back: it holds every push acknowledged there, so it is up
    /// again without a catch-up on them, serves them, and catches the other up.
    /// </summary>
    [Fact]
    public async Task AtR2TheNodeOfAChainThatLeftUpLastServesItAgainAndCatchesUpTheOther()
    {
        var (pusher, first, last, survivors) = await StartChainAtR2Async(
            new Dictionary<string, string> { [ParamDb.Storage.Failpoints.Variable] = $"{ParamDb.Storage.Failpoints.StandIn}=delay:60000" });

        using var stop = new CancellationTokenSource();
        Task pushing = pusher.RunAsync(stop.Token);
        await pusher.WaitForPushesAsync(20);
        pusher.Avoid(first);
        await _cluster[first]!.KillAsync();
        await _cluster.WaitForViewAsync(survivors, $"n{first} declared down", v => v.Nodes.Single(n => n.Id == $"n{first}").State == NodeState.Down, TimeSpan.FromSeconds(30));
        // Pushes that only n{last} holds on the arcs it took over.
        long before = pusher.Pushes;
        await pusher.WaitForPushesAsync(before + 20);

        using (await pusher.PauseAsync())
        {
            pusher.Avoid(last);
            await _cluster[last]!.KillAsync();
            await _cluster.WaitForViewAsync(survivors, $"n{last} declared down, their shared arcs unavailable",
                v => v.Nodes.Single(n => n.Id == $"n{last}").State == NodeState.Down && v.Unavailable > 0, TimeSpan.FromSeconds(30));

            // The stale one back first: joining, and still joining once it was heard for longer than a catch-up of
            // its other arcs takes here, because only n{last} holds what was acknowledged on their shared arcs.
            await _cluster.StartAsync(first, null);
            await _cluster.WaitForViewAsync(survivors, $"n{first} joining", v => v.Nodes.Single(n => n.Id == $"n{first}").State == NodeState.Joining, TimeSpan.FromSeconds(60));
            long deadline = Environment.TickCount64 + 3000;
            while (Environment.TickCount64 < deadline)
            {
                ClusterView? now = await _cluster.ViewAsync(survivors[0]);
                Assert.True(now is null || now.Nodes.Single(n => n.Id == $"n{first}").State != NodeState.Up, $"n{first}, stale, was counted up while n{last} was down");
                await Task.Delay(100);
            }

            await _cluster.StartAsync(last, null);
            await _cluster.WaitForViewAsync(survivors, "both up, every arc available and fully copied",
                v => v.Nodes.All(n => n.State == NodeState.Up) && v.Unavailable == 0 && v.UnderReplicated == 0, TimeSpan.FromSeconds(90));
            pusher.Revive(first);
            pusher.Revive(last);
        }
        await FinishAsync(pusher, stop, pushing, $"n{first} then n{last} lost");
    }

    /// <summary>
    /// Re-replication (docs/replication.md): five nodes at R = 2. A node dies; every arc it held gets a stand-in, the
    /// next node up past its chain, which is sent the arc whole while pushes go on, and the cluster reports every arc
    /// with two copies again. Then the node that took over some of its arcs dies too: their caught-up stand-ins serve
    /// them, no arc is unavailable, no acknowledged push is lost, and pushes go on through the three survivors.
    /// </summary>
    [Fact]
    public async Task AtR2ACaughtUpStandInServesTheArcsOfAChainThatLostBothNodes()
    {
        var (pusher, first, last, survivors) = await StartChainAtR2Async(null);

        using var stop = new CancellationTokenSource();
        Task pushing = pusher.RunAsync(stop.Token);
        await pusher.WaitForPushesAsync(20);
        pusher.Avoid(first);
        await _cluster[first]!.KillAsync();
        long killed = Environment.TickCount64;
        ClusterView restored = await _cluster.WaitForViewAsync(survivors, $"n{first} down and every arc with two copies again",
            v => v.Nodes.Single(n => n.Id == $"n{first}").State == NodeState.Down && v.UnderReplicated == 0, TimeSpan.FromSeconds(60));
        Assert.NotEmpty(restored.StandIns!);
        Assert.DoesNotContain(restored.StandIns!, s => s.Node == $"n{first}");
        output.WriteLine($"n{first} killed; {restored.StandIns!.Count} arcs re-replicated {Environment.TickCount64 - killed} ms later");
        await pusher.WaitForPushesAsync(pusher.Pushes + 20);

        pusher.Avoid(last);
        await _cluster[last]!.KillAsync();
        await _cluster.WaitForViewAsync(survivors, $"n{last} down too, and every arc still served",
            v => v.Nodes.Single(n => n.Id == $"n{last}").State == NodeState.Down && v.Unavailable == 0, TimeSpan.FromSeconds(30));
        ClusterRing now = ClusterRing.FromView((await _cluster.ViewAsync(survivors[0]))!);
        int servedByStandIns = Enumerable.Range(0, now.Tokens.Length).Count(t => now.IsStandIn(t, now.Primaries[t]));
        Assert.True(servedByStandIns > 0, "no arc of the chain both nodes shared is served by its stand-in");
        await pusher.WaitForPushesAsync(pusher.Pushes + 20);
        using (await pusher.PauseAsync())
        {
            List<string> off = await pusher.CheckSumsAsync(survivors);
            Assert.True(off.Count == 0, $"with n{first} and n{last} down:\n{string.Join("\n", off)}\n{pusher.TakeTraces()}\n{string.Join("\n", _cluster.LogTails(40))}");
        }
        output.WriteLine($"n{last} killed too: {servedByStandIns} arcs served by their stand-ins");

        await _cluster.StartAsync(first, null);
        await _cluster.StartAsync(last, null);
        await _cluster.WaitForViewAsync(survivors, "both back, caught up and up", v => v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0, TimeSpan.FromSeconds(90));
        pusher.Revive(first);
        pusher.Revive(last);
        await FinishAsync(pusher, stop, pushing, $"n{first} then n{last} lost, a stand-in between");
    }
}
