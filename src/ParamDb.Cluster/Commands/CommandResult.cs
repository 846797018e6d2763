namespace ParamDb.Cluster.Commands;

/// <summary>What applying a command did; a byte in logs and replies, values never renumbered.</summary>
public enum CommandOutcome : byte
{
    /// <summary>The state changed as asked.</summary>
    Applied = 0,

    /// <summary>A table or worker was created; <see cref="CommandResult.Id"/> is its new id.</summary>
    Created = 1,

    /// <summary>Already so: the cluster was initialized with this id, the node or table exists exactly as given.</summary>
    AlreadyExists = 2,

    /// <summary>Nothing to do (e.g. the node is already in that state).</summary>
    Unchanged = 3,

    /// <summary>No-op: the name or id is taken by something else (a table with another schema, a node with other addresses).</summary>
    Conflict = 4,

    /// <summary>No-op: no node, table or worker of that name or id.</summary>
    NotFound = 5,

    /// <summary>No-op: the cluster has not been initialized yet.</summary>
    NotInitialized = 6,

    /// <summary>No-op: the command breaks a rule or its bytes could not be read.</summary>
    Invalid = 7,
}

/// <summary>
/// The outcome of one applied command, computed the same way on every member from the same log. The proposer
/// receives it from <see cref="ServerManager.ProposeAsync"/>.
/// </summary>
/// <param name="Outcome">What happened.</param>
/// <param name="Id">The table or worker id concerned (the new one for <see cref="CommandOutcome.Created"/>,
/// the existing one for <see cref="CommandOutcome.AlreadyExists"/> and <see cref="CommandOutcome.Conflict"/>), or null.</param>
/// <param name="Detail">Why a no-op was one, for people; null on success.</param>
public sealed record CommandResult(CommandOutcome Outcome, uint? Id = null, string? Detail = null)
{
    /// <summary>The ring epoch right after the command.</summary>
    public ulong RingEpoch { get; init; }

    /// <summary>The Raft log index of the command's entry (0 when applied outside a log, e.g. in a test).</summary>
    public long LogIndex { get; init; }

    /// <summary>True for <see cref="CommandOutcome.Applied"/>, <see cref="CommandOutcome.Created"/>,
    /// <see cref="CommandOutcome.AlreadyExists"/> and <see cref="CommandOutcome.Unchanged"/>: the state is as asked.</summary>
    public bool Succeeded => Outcome is CommandOutcome.Applied or CommandOutcome.Created or CommandOutcome.AlreadyExists or CommandOutcome.Unchanged;
}
