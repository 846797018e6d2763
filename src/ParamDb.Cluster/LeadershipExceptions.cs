namespace ParamDb.Cluster;

/// <summary>
/// This member is not the leader and another one is: send the request there. <see cref="LeaderHttp"/> is the
/// leader's HTTP address when known (from its member metadata or the node table).
/// </summary>
public sealed class NotLeaderException : InvalidOperationException
{
    /// <summary>An exception naming the leader.</summary>
    public NotLeaderException(string? leaderId, string? leaderHttp, Exception? innerException = null)
        : base($"This member is not the leader; the leader is {leaderId ?? "unknown"} at {leaderHttp ?? "an unknown address"}.", innerException)
    {
        LeaderId = leaderId;
        LeaderHttp = leaderHttp;
    }

    /// <summary>The leader's node id, or null when not yet known.</summary>
    public string? LeaderId { get; }

    /// <summary>The leader's HTTP address (<c>host:port</c>), or null when not yet known.</summary>
    public string? LeaderHttp { get; }
}

/// <summary>
/// No leader is known (an election is under way, or too few members are reachable): nothing was appended, so
/// retrying after a short wait is safe. A proposal that was appended and lost its leader is a
/// <see cref="CommitUnknownException"/> instead.
/// </summary>
public sealed class NoLeaderException : InvalidOperationException
{
    /// <summary>An exception with a default message.</summary>
    public NoLeaderException(Exception? innerException = null)
        : base("No leader is known for the server manager's Raft group; an election may be under way.", innerException) { }
}

/// <summary>
/// A change's outcome is unknown: the leader stopped leading while it replicated the entry, or the change was handed
/// to the leader and no answer came back (the connection broke after the request went out). It may or may not
/// have been made. Unlike <see cref="NoLeaderException"/>, retrying is safe only for changes
/// that are idempotent (a table create of the same schema, a delete).
/// </summary>
public sealed class CommitUnknownException(Exception innerException)
    : InvalidOperationException("The leader was sent this change and did not answer: it may or may not have been made.", innerException);
