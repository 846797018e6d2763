using System.Net;
using Microsoft.Extensions.Logging;

namespace ParamDb.Cluster;

/// <summary>How one member of the server manager's Raft group runs.</summary>
public sealed record ServerManagerOptions
{
    /// <summary>This node's id (<c>[A-Za-z0-9_.-]{1,64}</c>), published to the other members as metadata <c>id</c>.</summary>
    public required string NodeId { get; init; }

    /// <summary>The TCP endpoint the Raft transport listens on; also this member's identity in the group.</summary>
    public required IPEndPoint RaftEndPoint { get; init; }

    /// <summary>
    /// The node's data directory. The manager keeps its write-ahead log in <c>raft/wal</c>, state snapshots in
    /// <c>raft/state</c> and the member list in the file <c>raft/members</c>.
    /// </summary>
    public required string DataDirectory { get; init; }

    /// <summary>
    /// True for the very first member of a new group: with no saved member list it makes itself the only voter
    /// (and so the leader). Every other member starts with false and waits for the leader to add it; a restart
    /// of any member uses its saved member list whatever this says.
    /// </summary>
    public bool ColdStart { get; init; }

    /// <summary>This node's HTTP API address (<c>host:port</c>), published as metadata <c>http</c> so followers can name the leader's.</summary>
    public string? HttpEndPoint { get; init; }

    /// <summary>Lower bound of the randomized election timeout, in milliseconds (default 150).</summary>
    public int LowerElectionTimeoutMs { get; init; } = 150;

    /// <summary>Upper bound of the randomized election timeout, in milliseconds (default 300).</summary>
    public int UpperElectionTimeoutMs { get; init; } = 300;

    /// <summary>Logs of the manager and of DotNext's Raft; none when null.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is wrong.</summary>
    public void Validate()
    {
        if (!Metadata.NodeInfo.IsValidId(NodeId))
            throw new ArgumentException($"NodeId must match [A-Za-z0-9_.-]{{1,64}}; got \"{NodeId}\".");
        ArgumentNullException.ThrowIfNull(RaftEndPoint);
        ArgumentException.ThrowIfNullOrEmpty(DataDirectory);
        if (HttpEndPoint is not null && !Metadata.NodeInfo.IsValidAddress(HttpEndPoint))
            throw new ArgumentException($"HttpEndPoint must be host:port; got \"{HttpEndPoint}\".");
        if (LowerElectionTimeoutMs < 1 || UpperElectionTimeoutMs <= LowerElectionTimeoutMs)
            throw new ArgumentException($"Election timeouts must satisfy 1 ≤ lower < upper; got {LowerElectionTimeoutMs}…{UpperElectionTimeoutMs} ms.");
    }
}
