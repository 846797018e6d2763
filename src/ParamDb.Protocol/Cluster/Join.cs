namespace ParamDb.Protocol.Cluster;

/// <summary>
/// The body of <c>POST /v1/cluster/nodes</c>: a node asks to join (<c>paramdb --join MEMBER</c> sends it to any
/// member, which hands it to the leader). Addresses are <c>host:port</c>.
/// </summary>
public sealed record JoinRequest
{
    /// <summary>The joining node's id, <c>[A-Za-z0-9_.-]{1,64}</c>.</summary>
    public required string Id { get; init; }

    /// <summary>Its HTTP/1.1 address.</summary>
    public required string Http { get; init; }

    /// <summary>Its HTTP/2 (h2c) address: the stream and peer links.</summary>
    public required string H2 { get; init; }

    /// <summary>Its Raft address.</summary>
    public required string Raft { get; init; }
}

/// <summary>What a joining node is told: the cluster it joined and the ring tokens it was given.</summary>
public sealed record JoinReply
{
    /// <summary>The cluster id, kept in the node's data folder.</summary>
    public required Guid ClusterId { get; init; }

    /// <summary>R, copies of each range.</summary>
    public required int Replicas { get; init; }

    /// <summary>V, tokens per node.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("vnodes")]
    public required int VirtualNodes { get; init; }

    /// <summary>The ring epoch that added the node.</summary>
    public required ulong Epoch { get; init; }

    /// <summary>The node's tokens, ascending, as decimal strings.</summary>
    public required string[] Tokens { get; init; }
}
