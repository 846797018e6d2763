using ParamDb.Cluster.Metadata;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Replication;

/// <summary>
/// The ring as this node's replication sees it at one epoch: which arcs it is primary for, and which of them each
/// other node backs up. Built once per epoch, read without locks by every push.
/// </summary>
internal sealed class ReplicaPlan
{
    private ReplicaPlan(ClusterRing ring, int self, bool[] down, List<ulong>[] heldBy, HashSet<ulong>[] fresh)
    {
        Ring = ring;
        Self = self;
        Down = down;
        HeldBy = heldBy;
        Fresh = fresh;
    }

    /// <summary>The ring.</summary>
    public ClusterRing Ring { get; }

    /// <summary>This node's index in <see cref="Ring"/>.</summary>
    public int Self { get; }

    /// <summary>By node index: declared down, so not waited for (it catches up when it returns).</summary>
    public bool[] Down { get; }

    /// <summary>By node index: the tokens of the arcs this node is primary for that the node backs up, ascending.</summary>
    public List<ulong>[] HeldBy { get; }

    /// <summary>
    /// By node index: the tokens of <see cref="HeldBy"/> it stands in for and is not counted caught up on yet
    /// (docs/replication.md, "Re-replication"): sent whole beside the pushes, which do not wait for it there meanwhile.
    /// </summary>
    public HashSet<ulong>[] Fresh { get; }

    /// <summary>Whether any arc of this node has a backup: R ≥ 2 and more than one node.</summary>
    public bool Replicates => Ring.ReplicaCount > 1;

    /// <summary>The plan of <paramref name="ring"/> for <paramref name="self"/>, with node states from <paramref name="state"/>.</summary>
    public static ReplicaPlan Of(ClusterRing ring, string self, ClusterState state)
    {
        int me = ring.NodeIndex(self);
        var down = new bool[ring.NodeCount];
        var heldBy = new List<ulong>[ring.NodeCount];
        var fresh = new HashSet<ulong>[ring.NodeCount];
        for (int n = 0; n < ring.NodeCount; n++)
        {
            heldBy[n] = [];
            fresh[n] = [];
            down[n] = state.Nodes.TryGetValue(ring.Nodes[n], out NodeInfo? info) && info.State == NodeState.Down;
        }
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        for (int i = 0; i < tokens.Length; i++)
        {
            ReadOnlySpan<int> set = ring.ReplicasAt(i);
            if (set[0] != me) continue;
            for (int b = 1; b < set.Length; b++) heldBy[set[b]].Add(tokens[i]);
            for (int b = ring.CopiesAt(i); b < set.Length; b++) fresh[set[b]].Add(tokens[i]);
        }
        return new ReplicaPlan(ring, me, down, heldBy, fresh);
    }
}
