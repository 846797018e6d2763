using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using ParamDb.Testing.History;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Two nodes lost at once (docs/replication.md): five real nodes at R = 3, a clocked worker pushing throughout. One
/// node is killed with SIGKILL and, before the leader has declared it down, a second: the Raft leader itself (the
/// new leader must carry the failover on), another node, or a node that the first's failover promotes, which dies as
/// it is promoted (failpoint <c>promotion</c>). Every arc keeps a live copy, so pushes go on; every acknowledged push
/// is still there, on every node, after the two come back and catch up.
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
        before = pusher.Pushes;
        await pusher.WaitForPushesAsync(before + 20);
        await stop.CancelAsync();
        await pushing;

        List<string> wrong = await pusher.CheckSumsAsync(everyone);
        Assert.True(wrong.Count == 0, $"after both came back:\n{string.Join("\n", wrong)}\n{string.Join("\n", _cluster.LogTails(40))}");
        HistoryAssert.Linearizable(_history);
        output.WriteLine($"{pusher.Pushes} pushes acknowledged ({pusher.Retries} retries), {_history.Count} operations checked, 0 lost, 0 applied twice");
    }
}
