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

    /// <summary>
    /// The default of <see cref="DownAfter"/>: 1 s, the bound for failure detection. Shorter detects sooner
    /// but on 2 loaded cores replies stall for 150 ms and more (see <see cref="LowerElectionTimeoutMs"/>), and a node
    /// falsely declared down costs a catch-up.
    /// </summary>
    public static readonly TimeSpan DefaultDownAfter = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long the leader waits without a heartbeat before it declares a node down (<c>--down-after</c>). A node's
    /// lease is half of it (<see cref="LeaseDuration"/>), so by the time the leader declares it down its lease
    /// has lapsed: it was measured from a heartbeat the node sent before the leader last heard it.
    /// </summary>
    public TimeSpan DownAfter { get; init; } = DefaultDownAfter;

    /// <summary>How long one granted heartbeat lets a node act as primary, from when it sent it: half of <see cref="DownAfter"/>.</summary>
    public TimeSpan LeaseDuration => DownAfter / 2;

    /// <summary>How often a node sends its heartbeat: an eighth of <see cref="DownAfter"/>, four tries within a lease.</summary>
    public TimeSpan HeartbeatInterval => DownAfter / 8;

    /// <summary>
    /// The default of <see cref="ResyncBytesPerSecond"/>: 128 MiB/s, 1 GiB in 8 s (the design's bound is 10 s). Measured on
    /// this machine's 2 cores (docs/benchmarks.md, "Catching a node up"): faster copies took more of the pushes' CPU than
    /// the 30 % a catch-up may.
    /// </summary>
    public const long DefaultResyncBytesPerSecond = 128L << 20;

    /// <summary>
    /// How fast a primary sends a returning (joining) backup its arcs whole, in bytes per second, 0 for no limit
    /// (<c>--resync-rate</c>, in MiB/s): the copy runs beside the pushes, which go on meanwhile.
    /// </summary>
    public long ResyncBytesPerSecond { get; init; } = DefaultResyncBytesPerSecond;

    /// <summary>How long a start waits for a leader, a join's answer, or the node to appear in the state.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
