using ParamDb.Cluster.Metadata;
using ParamDb.Cluster.Wire;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Commands;

/// <summary>
/// Fixes the cluster id, R and V, and adds the first node (ring epoch becomes 1). Applies once: again with the
/// same cluster id is <see cref="CommandOutcome.AlreadyExists"/>, with another it is <see cref="CommandOutcome.Conflict"/>.
/// <code>
/// 01 00 | 01 | clusterId: 16 bytes (Guid.ToByteArray order) | R: u16 | V: u16 | node
/// node := str16 id | str16 http | str16 h2 | str16 raft | u8 state      (str16 := u16 length | UTF-8)
/// </code>
/// </summary>
/// <param name="ClusterId">The cluster's id, not <see cref="Guid.Empty"/>.</param>
/// <param name="Replicas">R, 1…16.</param>
/// <param name="VirtualNodes">V, 1…4096.</param>
/// <param name="FirstNode">The node that initializes the cluster.</param>
public sealed record InitCluster(Guid ClusterId, int Replicas, int VirtualNodes, NodeInfo FirstNode) : ClusterCommand
{
    /// <summary>Largest R.</summary>
    public const int MaxReplicas = 16;

    /// <summary>Largest V.</summary>
    public const int MaxVirtualNodes = 4096;

    /// <inheritdoc/>
    public override CommandId Id => CommandId.InitCluster;

    private protected override bool NeedsInitializedCluster => false;

    internal override string? Problem()
    {
        if (ClusterId == Guid.Empty) return "The cluster id must not be the empty GUID.";
        if (Replicas is < 1 or > MaxReplicas) return $"R must be 1…{MaxReplicas}; got {Replicas}.";
        if (VirtualNodes is < 1 or > MaxVirtualNodes) return $"V must be 1…{MaxVirtualNodes}; got {VirtualNodes}.";
        return NodeCommand.Problem(FirstNode);
    }

    internal override void WriteBody(WireWriter writer)
    {
        writer.WriteGuid(ClusterId);
        writer.WriteU16(checked((ushort)Replicas));
        writer.WriteU16(checked((ushort)VirtualNodes));
        writer.WriteNode(FirstNode);
    }

    internal static InitCluster ReadBody(ref WireReader reader) =>
        new(reader.ReadGuid(), reader.ReadU16(), reader.ReadU16(), MetadataFields.ReadNode(ref reader));

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (state.IsInitialized)
        {
            result = state.ClusterId == ClusterId
                ? Outcome(CommandOutcome.AlreadyExists, detail: $"Cluster {ClusterId} is already initialized.")
                : Outcome(CommandOutcome.Conflict, detail: $"The cluster was initialized as {state.ClusterId}.");
            return state;
        }
        result = Outcome(CommandOutcome.Applied);
        return state with
        {
            ClusterId = ClusterId,
            Replicas = Replicas,
            VirtualNodes = VirtualNodes,
            RingEpoch = state.RingEpoch + 1,
            Nodes = state.Nodes.Clear().Add(FirstNode.Id, FirstNode),
            StandIns = state.StandIns.Clear(),
        };
    }
}

/// <summary>
/// Adds a node; bumps the ring epoch. The same node again is <see cref="CommandOutcome.AlreadyExists"/>; its id
/// with other addresses or state, or its raft address under another id, is <see cref="CommandOutcome.Conflict"/>.
/// <code>02 00 | 01 | node</code>
/// </summary>
/// <param name="Node">The node, usually <see cref="NodeState.Joining"/>.</param>
public sealed record AddNode(NodeInfo Node) : ClusterCommand
{
    /// <inheritdoc/>
    public override CommandId Id => CommandId.AddNode;

    internal override string? Problem() => NodeCommand.Problem(Node);

    internal override void WriteBody(WireWriter writer) => writer.WriteNode(Node);

    internal static AddNode ReadBody(ref WireReader reader) => new(MetadataFields.ReadNode(ref reader));

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (state.Nodes.TryGetValue(Node.Id, out var existing))
        {
            result = existing == Node
                ? Outcome(CommandOutcome.AlreadyExists)
                : Outcome(CommandOutcome.Conflict, detail: $"Node {Node.Id} exists as {existing}.");
            return state;
        }
        if (state.FindByRaftAddress(Node.Raft) is { } other)
        {
            result = Outcome(CommandOutcome.Conflict, detail: $"Raft address {Node.Raft} belongs to node {other.Id}.");
            return state;
        }
        result = Outcome(CommandOutcome.Applied);
        return StandIns.Prune(state with { Nodes = state.Nodes.Add(Node.Id, Node), RingEpoch = state.RingEpoch + 1 });
    }
}

/// <summary>
/// Moves a node to another state; bumps the ring epoch when it changes (<see cref="CommandOutcome.Unchanged"/>
/// otherwise). An unknown node is <see cref="CommandOutcome.NotFound"/>.
/// <code>03 00 | 01 | str16 node id | u8 state</code>
/// </summary>
/// <param name="NodeId">The node.</param>
/// <param name="State">Its new state.</param>
public sealed record SetNodeState(string NodeId, NodeState State) : ClusterCommand
{
    /// <inheritdoc/>
    public override CommandId Id => CommandId.SetNodeState;

    internal override string? Problem() =>
        !NodeInfo.IsValidId(NodeId) ? NodeCommand.BadId(NodeId)
        : !Enum.IsDefined(State) ? $"Unknown node state {(byte)State}." : null;

    internal override void WriteBody(WireWriter writer)
    {
        writer.WriteString16(NodeId);
        writer.WriteU8((byte)State);
    }

    internal static SetNodeState ReadBody(ref WireReader reader) =>
        new(reader.ReadString16("node id"), (NodeState)reader.ReadU8());

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (!state.Nodes.TryGetValue(NodeId, out var node))
        {
            result = Outcome(CommandOutcome.NotFound, detail: $"No node {NodeId}.");
            return state;
        }
        if (node.State == State)
        {
            result = Outcome(CommandOutcome.Unchanged);
            return state;
        }
        result = Outcome(CommandOutcome.Applied);
        ulong epoch = state.RingEpoch + 1;
        ulong leftUpAt = node.State == NodeState.Up && State == NodeState.Down ? epoch : node.LeftUpAt;
        return StandIns.Prune(state with { Nodes = state.Nodes.SetItem(NodeId, node with { State = State, LeftUpAt = leftUpAt }), RingEpoch = epoch });
    }
}

/// <summary>
/// Removes a node from the metadata (not from the Raft group: that is <see cref="ServerManager.RemoveMemberAsync"/>);
/// bumps the ring epoch. An unknown node is <see cref="CommandOutcome.NotFound"/>.
/// <code>04 00 | 01 | str16 node id</code>
/// </summary>
/// <param name="NodeId">The node.</param>
public sealed record RemoveNode(string NodeId) : ClusterCommand
{
    /// <inheritdoc/>
    public override CommandId Id => CommandId.RemoveNode;

    internal override string? Problem() => NodeInfo.IsValidId(NodeId) ? null : NodeCommand.BadId(NodeId);

    internal override void WriteBody(WireWriter writer) => writer.WriteString16(NodeId);

    internal static RemoveNode ReadBody(ref WireReader reader) => new(reader.ReadString16("node id"));

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (!state.Nodes.ContainsKey(NodeId))
        {
            result = Outcome(CommandOutcome.NotFound, detail: $"No node {NodeId}.");
            return state;
        }
        result = Outcome(CommandOutcome.Applied);
        return StandIns.Prune(state with { Nodes = state.Nodes.Remove(NodeId), RingEpoch = state.RingEpoch + 1 });
    }
}

/// <summary>
/// Counts <see cref="NodeId"/> a caught-up stand-in of the arcs ending at <see cref="Tokens"/> (docs/replication.md,
/// "Re-replication"); bumps the ring epoch, since such a stand-in may now serve its arc should its chain fail. Only
/// at the epoch the arcs' primaries reported it at, and only for arcs the node is a stand-in of then and not yet
/// counted caught up for: any other token is skipped (<see cref="CommandOutcome.Unchanged"/> when none is left).
/// <code>09 00 | 01 | str16 node id | u64 epoch | u32 count | u64 token*</code>
/// </summary>
/// <param name="NodeId">The stand-in.</param>
/// <param name="Epoch">The ring epoch its arcs' primaries counted it caught up at.</param>
/// <param name="Tokens">The merged tokens ending those arcs.</param>
public sealed record MarkStandIns(string NodeId, ulong Epoch, ulong[] Tokens) : ClusterCommand
{
    /// <summary>Most tokens in one command: every arc of 1,024 nodes × 64 tokens.</summary>
    public const int MaxTokens = 1 << 16;

    /// <inheritdoc/>
    public override CommandId Id => CommandId.MarkStandIns;

    internal override string? Problem() =>
        !NodeInfo.IsValidId(NodeId) ? NodeCommand.BadId(NodeId)
        : Tokens is null || Tokens.Length is 0 or > MaxTokens ? $"A stand-in is marked for 1…{MaxTokens} arcs; got {Tokens?.Length ?? 0}." : null;

    internal override void WriteBody(WireWriter writer)
    {
        writer.WriteString16(NodeId);
        writer.WriteU64(Epoch);
        writer.WriteU32((uint)Tokens.Length);
        foreach (ulong token in Tokens) writer.WriteU64(token);
    }

    internal static MarkStandIns ReadBody(ref WireReader reader)
    {
        string node = reader.ReadString16("node id");
        ulong epoch = reader.ReadU64();
        uint count = reader.ReadU32();
        if (count > MaxTokens) throw reader.Invalid($"{count} stand-in tokens; at most {MaxTokens}");
        var tokens = new ulong[count];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = reader.ReadU64();
        return new MarkStandIns(node, epoch, tokens);
    }

    /// <summary>Equal when the node, epoch and tokens (in order) are.</summary>
    public bool Equals(MarkStandIns? other) =>
        other is not null && NodeId == other.NodeId && Epoch == other.Epoch && Tokens.AsSpan().SequenceEqual(other.Tokens);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(NodeId, Epoch, Tokens.Length);

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (!state.Nodes.TryGetValue(NodeId, out NodeInfo? node))
        {
            result = Outcome(CommandOutcome.NotFound, detail: $"No node {NodeId}.");
            return state;
        }
        if (Epoch != state.RingEpoch || node.State != NodeState.Up || state.BuildRing() is not { } ring)
        {
            result = Outcome(CommandOutcome.Unchanged, detail: $"The ring is at epoch {state.RingEpoch}, not {Epoch}, or {NodeId} is not up.");
            return state;
        }
        int self = ring.NodeIndex(NodeId);
        var standIns = state.StandIns.ToBuilder();
        foreach (ulong token in Tokens)
        {
            int arc = ring.Tokens.BinarySearch(token);
            if (arc < 0 || !ring.IsStandIn(arc, self) || ring.ReplicasAt(arc)[..ring.CopiesAt(arc)].Contains(self)) continue;
            standIns.Add(new StandIn(token, NodeId));
        }
        if (standIns.Count == state.StandIns.Count)
        {
            result = Outcome(CommandOutcome.Unchanged, detail: $"{NodeId} is no stand-in still to count of those arcs.");
            return state;
        }
        result = Outcome(CommandOutcome.Applied);
        return state with { StandIns = standIns.ToImmutable(), RingEpoch = state.RingEpoch + 1 };
    }
}

/// <summary>Rules shared by the node commands.</summary>
internal static class NodeCommand
{
    public static string BadId(string id) => $"Node id must match [A-Za-z0-9_.-]{{1,{NodeInfo.MaxIdLength}}}; got \"{id}\".";

    public static string? Problem(NodeInfo? node) => node is null ? "The node is missing." : node.Problem();
}
