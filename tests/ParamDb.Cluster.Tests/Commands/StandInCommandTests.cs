using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using static ParamDb.Cluster.Tests.Support.Samples;

namespace ParamDb.Cluster.Tests.Commands;

/// <summary>
/// Counting stand-ins caught up (<see cref="MarkStandIns"/>), and forgetting them as the nodes change: a count is kept
/// exactly while the stand-in still holds every acknowledged push of its arc.
/// </summary>
public sealed class StandInCommandTests
{
    private static NodeInfo Member(string id, int octet) => Node(id, octet) with { Tokens = [.. Ring.ForNode(id, 8).Tokens] };

    /// <summary>Four nodes up at R = 2, V = 8.</summary>
    private static ClusterState FourNodes()
    {
        var state = new InitCluster(ClusterId, 2, 8, Member("a", 1)).Apply(ClusterState.Empty, out _);
        foreach (var (id, octet) in new[] { ("b", 2), ("c", 3), ("d", 4) }) state = new AddNode(Member(id, octet)).Apply(state, out _);
        return state;
    }

    private static ClusterState Set(ClusterState state, string node, NodeState to) => new SetNodeState(node, to).Apply(state, out _);

    /// <summary>An arc of a's chain once a is down: its token, the other chain node, and its stand-in.</summary>
    private static (ulong Token, string Other, string StandIn) ArcOfA(ClusterState state)
    {
        ClusterRing ring = state.BuildRing()!;
        for (int i = 0; i < ring.Tokens.Length; i++)
        {
            ReadOnlySpan<int> set = ring.ReplicasAt(i);
            if (ring.Owners[i] != ring.NodeIndex("a")) continue;
            Assert.Equal(3, set.Length);
            Assert.Equal(2, ring.CopiesAt(i));
            return (ring.Tokens[i], ring.Nodes[set[0]], ring.Nodes[set[2]]);
        }
        throw new InvalidOperationException("a owns no arc");
    }

    [Fact]
    public void AStandInIsCountedOnlyAtTheEpochReportedAndOnlyForArcsItStandsInFor()
    {
        ClusterState state = Set(FourNodes(), "a", NodeState.Down);
        var (token, _, standIn) = ArcOfA(state);
        ulong epoch = state.RingEpoch;
        Assert.Same(state, new MarkStandIns(standIn, epoch - 1, [token]).Apply(state, out var stale));
        Assert.Equal(CommandOutcome.Unchanged, stale.Outcome);

        ClusterRing ring = state.BuildRing()!;
        ulong notItsArc = ring.Tokens.ToArray().First(t => !ring.IsStandIn(ring.Tokens.BinarySearch(t), ring.NodeIndex(standIn)));
        ClusterState counted = new MarkStandIns(standIn, epoch, [token, notItsArc]).Apply(state, out var applied);
        Assert.Equal(CommandOutcome.Applied, applied.Outcome);
        Assert.Equal(epoch + 1, counted.RingEpoch);   // a new ring: the stand-in may serve the arc now
        Assert.Equal([new StandIn(token, standIn)], counted.StandIns);
        Assert.Equal(3, counted.BuildRing()!.CopiesAt(counted.BuildRing()!.Tokens.BinarySearch(token)));

        // Again, or for an arc it does not stand in for: nothing to do.
        Assert.Same(counted, new MarkStandIns(standIn, counted.RingEpoch, [token, notItsArc]).Apply(counted, out var again));
        Assert.Equal(CommandOutcome.Unchanged, again.Outcome);
        // An unknown node, one that is not up, no tokens.
        new MarkStandIns("zz", epoch, [token]).Apply(state, out var unknown);
        Assert.Equal(CommandOutcome.NotFound, unknown.Outcome);
        ClusterState joining = Set(state, standIn, NodeState.Joining);
        Assert.Same(joining, new MarkStandIns(standIn, joining.RingEpoch, [token]).Apply(joining, out var notUp));
        Assert.Equal(CommandOutcome.Unchanged, notUp.Outcome);
        Assert.Contains("1…", Assert.Throws<ArgumentException>(() => new MarkStandIns(standIn, epoch, []).Prepare()).Message);
    }

    [Fact]
    public void AStandInServesWhenItsArcsChainIsDownAndIsForgottenOnceTheChainIsWholeAgain()
    {
        ClusterState state = Set(FourNodes(), "a", NodeState.Down);
        var (token, other, standIn) = ArcOfA(state);
        state = new MarkStandIns(standIn, state.RingEpoch, [token]).Apply(state, out _);

        // The arc's other chain node dies: the counted stand-in serves it, and stays counted.
        state = Set(state, other, NodeState.Down);
        ClusterRing ring = state.BuildRing()!;
        int arc = ring.Tokens.BinarySearch(token);
        Assert.Equal(standIn, ring.Nodes[ring.Primaries[arc]]);
        Assert.Contains(new StandIn(token, standIn), state.StandIns);

        // It dies too: nobody serves the arc and nothing is acknowledged there, so its count is kept (it holds the
        // newest copy), and it serves the arc again once up.
        state = Set(state, standIn, NodeState.Down);
        Assert.Contains(new StandIn(token, standIn), state.StandIns);
        ring = state.BuildRing()!;
        Assert.Equal(NodeState.Down, ring.StateOf(ring.Primaries[arc]));
        state = Set(Set(state, standIn, NodeState.Joining), standIn, NodeState.Up);
        Assert.Equal(standIn, state.BuildRing()!.Nodes[state.BuildRing()!.Primaries[arc]]);

        // The chain is whole again: the stand-in is not needed, and no longer sent the arc's pushes, so forgotten.
        state = Set(Set(state, "a", NodeState.Joining), "a", NodeState.Up);
        Assert.Contains(new StandIn(token, standIn), state.StandIns);   // one chain node still down: still a copy
        state = Set(Set(state, other, NodeState.Joining), other, NodeState.Up);
        Assert.DoesNotContain(new StandIn(token, standIn), state.StandIns);
        Assert.Equal(2, state.BuildRing()!.ReplicasAt(arc).Length);
    }

    [Fact]
    public void AStandInThatDiesWhileAnotherNodeServesItsArcIsForgotten()
    {
        ClusterState state = Set(FourNodes(), "a", NodeState.Down);
        var (token, other, standIn) = ArcOfA(state);
        state = new MarkStandIns(standIn, state.RingEpoch, [token]).Apply(state, out _);
        state = Set(state, standIn, NodeState.Down);   // the other chain node serves on and acknowledges without it
        Assert.DoesNotContain(new StandIn(token, standIn), state.StandIns);
        ClusterRing ring = state.BuildRing()!;
        Assert.Equal(other, ring.Nodes[ring.Primaries[ring.Tokens.BinarySearch(token)]]);

        // Removing the node forgets it as well.
        ClusterState again = new MarkStandIns(standIn, Set(FourNodes(), "a", NodeState.Down).RingEpoch, [token]).Apply(Set(FourNodes(), "a", NodeState.Down), out _);
        Assert.NotEmpty(again.StandIns);
        Assert.Empty(new RemoveNode(standIn).Apply(again, out _).StandIns);
    }
}
