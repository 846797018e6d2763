using System.Net;

namespace ParamDb.Cluster;

/// <summary>How a node takes part in a cluster (docs/cluster.md; <c>--node-id</c>, <c>--raft</c>, <c>--cluster-init</c>, <c>--join</c>…).</summary>
public sealed record ClusterOptions
{
    /// <summary>This node's id, <c>[A-Za-z0-9_.-]{1,64}</c>; kept in the data folder after the first start.</summary>
    public required string NodeId { get; init; }

    /// <summary>The Raft endpoint of the server manager (DotNext's TCP transport).</summary>
    public required IPEndPoint RaftEndPoint { get; init; }

    /// <summary>This node's HTTP/1.1 address, <c>host:port</c>, as peers and clients reach it.</summary>
    public required string Http { get; init; }

    /// <summary>This node's HTTP/2 (h2c) address, <c>host:port</c>: the stream, and peer links.</summary>
    public required string H2 { get; init; }

    /// <summary>The node's data folder: <c>cluster.json</c> and the manager's <c>raft/</c> live there beside the store.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>First start of the first node: found a new cluster.</summary>
    public bool Init { get; init; }

    /// <summary>First start of any other node: the HTTP address (<c>host:port</c>) of any member.</summary>
    public string? Join { get; init; }

    /// <summary>R, copies of each range, primary included (cluster-wide, fixed at init).</summary>
    public int Replicas { get; init; } = 2;

    /// <summary>V, tokens per node (cluster-wide, fixed at init).</summary>
    public int VirtualNodes { get; init; } = Protocol.Ring.DefaultVirtualNodes;

    /// <summary>The secret peers prove to each other on their HTTP links; null on loopback-only clusters.</summary>
    public string? Secret { get; init; }

    /// <summary>
    /// Lower bound of the Raft election timeout, ms. 300–600 rather than Raft's customary 150–300: on 2 cores
    /// shared by three nodes and their clients, replies slower than 150 ms deposed leaders every few seconds
    /// (seen in ClusterProcessTests under load), and a new leader within about a second is still well inside what
    /// failover needs.
    /// </summary>
    public int LowerElectionTimeoutMs { get; init; } = 300;

    /// <summary>Upper bound of the Raft election timeout, ms.</summary>
    public int UpperElectionTimeoutMs { get; init; } = 600;

    /// <summary>How long a start waits for a leader, a join's answer, or the node to appear in the state.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
