using System.Collections.Immutable;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Metadata;

/// <summary>
/// A node the server manager counts a caught-up <b>stand-in</b> of one arc: the arc's chain lost a node, the arc's
/// primary sent this node the arc whole and then every push on it, so it holds every acknowledged push there
/// (docs/replication.md, "Re-replication").
/// </summary>
/// <param name="Token">The merged ring token that ends the arc.</param>
/// <param name="Node">The stand-in's node id.</param>
public readonly record struct StandIn(ulong Token, string Node) : IComparable<StandIn>
{
    /// <summary>By token, then by node id (ordinal): the order the snapshot writes them in.</summary>
    public int CompareTo(StandIn other) =>
        Token != other.Token ? Token.CompareTo(other.Token) : string.CompareOrdinal(Node, other.Node);
}

/// <summary>Keeps <see cref="ClusterState.StandIns"/> true as the nodes change.</summary>
internal static class StandIns
{
    /// <summary>
    /// <paramref name="state"/> without the stand-ins that no longer hold every acknowledged push of their arc, or
    /// are no longer needed: a node that is not in its arc's set any more (declared down, its arc's chain whole
    /// again, a node joined the ring and the arc's chain changed) while another node serves the arc, which will
    /// acknowledge pushes without it. While no node serves the arc, nothing is acknowledged there, so a stand-in
    /// that went down keeps its count: of the arc's copies it may be the newest.
    /// </summary>
    public static ClusterState Prune(ClusterState state)
    {
        if (state.StandIns.IsEmpty) return state;
        ClusterRing? ring = state.BuildRing();
        var builder = state.StandIns.ToBuilder();
        foreach (StandIn standIn in state.StandIns)
        {
            int node = ring?.NodeIndex(standIn.Node) ?? -1;
            int arc = ring is null ? -1 : ring.Tokens.BinarySearch(standIn.Token);
            bool keep = node >= 0 && arc >= 0
                && (ring!.StateOf(ring.Primaries[arc]) != NodeState.Up
                    ? ring.IsStandIn(arc, node) || !ring.ReplicasAt(arc).Contains(node)
                    : ring.IsStandIn(arc, node) && ring.ReplicasAt(arc)[..ring.CopiesAt(arc)].Contains(node));
            if (!keep) builder.Remove(standIn);
        }
        return builder.Count == state.StandIns.Count ? state : state with { StandIns = builder.ToImmutable() };
    }
}
