using System.Text.Json.Serialization;

namespace ParamDb.Protocol.Cluster;

/// <summary>
/// The reply of <c>GET /v1/cluster</c>: the ring at one epoch and where to reach each node. A smart client builds
/// a <see cref="ClusterRing"/> from it (<see cref="ClusterRing.FromView"/>), slices its keys per node with
/// <see cref="KeySlicer"/> and refetches when a node answers with a newer epoch. A single node answers the same
/// shape with one node and epoch 0.
/// <code>
/// {"epoch":7,"leader":"a","replicas":2,"vnodes":64,"underReplicated":0,"unavailable":0,
///  "nodes":[{"id":"a","http":"10.0.0.1:8080","h2":"10.0.0.1:8081","raft":"10.0.0.1:8082","state":"up","tokens":["123",…]}]}
/// </code>
/// </summary>
public sealed record ClusterView
{
    /// <summary>The ring epoch: raised by one at every committed change of nodes.</summary>
    public required ulong Epoch { get; init; }

    /// <summary>The id of the node that commits ring changes; null when there is none (a single node, an election).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Leader { get; init; }

    /// <summary>R: copies of each key, primary included.</summary>
    public required int Replicas { get; init; }

    /// <summary>V: tokens per node.</summary>
    [JsonPropertyName("vnodes")]
    public required int VirtualNodes { get; init; }

    /// <summary>Ranges kept by fewer than R nodes that are up.</summary>
    public int UnderReplicated { get; init; }

    /// <summary>Ranges kept by no node that is up: their keys cannot be read or written.</summary>
    public int Unavailable { get; init; }

    /// <summary>Every node in the ring, whatever its state.</summary>
    public required IReadOnlyList<ClusterNode> Nodes { get; init; }

    /// <summary>
    /// The stand-ins the server manager counts caught up: a node that holds a whole copy of an arc whose chain lost a
    /// node, and serves it if no node of its chain is up (docs/replication.md, "Re-replication"). Absent when there
    /// are none; <see cref="ClusterRing.FromView"/> needs them to find who serves such an arc.
    /// </summary>
    public IReadOnlyList<ClusterStandIn>? StandIns { get; init; }
}

/// <summary>A caught-up stand-in of one arc (<see cref="ClusterView.StandIns"/>).</summary>
public sealed record ClusterStandIn
{
    /// <summary>The ring token that ends the arc, as a decimal u64 string.</summary>
    public required string Token { get; init; }

    /// <summary>The id of the node that holds the arc whole.</summary>
    public required string Node { get; init; }
}

/// <summary>One node of a <see cref="ClusterView"/>.</summary>
public sealed record ClusterNode
{
    /// <summary>The node's id: the seed of its tokens (<see cref="Ring.ForNode"/>), stable across restarts.</summary>
    public required string Id { get; init; }

    /// <summary>HTTP/1.1 address, <c>host:port</c> (REST).</summary>
    public string? Http { get; init; }

    /// <summary>HTTP/2 cleartext address, <c>host:port</c> (the stream).</summary>
    public string? H2 { get; init; }

    /// <summary>Address of the node's consensus traffic, <c>host:port</c>; null on a single node.</summary>
    public string? Raft { get; init; }

    /// <summary>Where the node is in its life in the group.</summary>
    public required NodeState State { get; init; }

    /// <summary>
    /// The node's ring tokens as decimal u64 strings (a u64 above 2^53 does not survive a JSON number in
    /// JavaScript), ascending: <see cref="ClusterRing.TokenStrings"/> writes them.
    /// </summary>
    public required string[] Tokens { get; init; }
}
