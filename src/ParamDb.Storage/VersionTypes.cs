namespace ParamDb.Storage;

/// <summary>Who pushes, at which clock (docs/consistency.md). The default is an anonymous push, which is never deduplicated.</summary>
/// <param name="Worker">Registered worker id; 0 for none.</param>
/// <param name="Clock">The worker's clock; 0 for none (the push is applied and advances nothing).</param>
public readonly record struct WorkerStamp(uint Worker, ulong Clock)
{
    /// <summary>True when the push carries a worker and a clock, so it is exactly-once and advances the clock.</summary>
    public bool IsClocked => Worker != 0 && Clock != 0;
}

/// <summary>Why a push was or was not applied.</summary>
public enum PushStatus
{
    /// <summary>Checked and applied (<see cref="PushOutcome.Applied"/> rows; fewer when ranges had seen the clock).</summary>
    Ok,
    /// <summary>The stamp names a worker that is not registered; nothing was applied.</summary>
    WorkerNotFound,
    /// <summary>
    /// The store's ranges changed after the caller sliced the push against them (<see cref="ParamStore.RangesVersion"/>);
    /// nothing was applied, no clock moved.
    /// </summary>
    RangesChanged,
}

/// <summary>The outcome of a push or tick.</summary>
/// <param name="Status">Whether it was accepted.</param>
/// <param name="Applied">Rows applied; the rest fell in ranges that had already seen this worker's clock.</param>
/// <param name="Logged">Completes when the push is durable in the store's mode; null when it already is.</param>
public readonly record struct PushOutcome(PushStatus Status, long Applied, Task? Logged = null)
{
    /// <summary>
    /// Completes when the push is durable (see <see cref="DurabilityMode"/>); acknowledge it only then. Faults when
    /// the write-ahead log could not be written.
    /// </summary>
    public Task Durable => Logged ?? Task.CompletedTask;

    /// <summary>Outcomes are equal when status and rows applied are: the durability task is a handle, not a value.</summary>
    public bool Equals(PushOutcome other) => Status == other.Status && Applied == other.Applied;

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Status, Applied);
}

/// <summary>A worker as the store knows it: its registration and its lease.</summary>
/// <param name="Id">Worker id, ≥ 1, never reused.</param>
/// <param name="Name">Registered name.</param>
/// <param name="Tables">Tables it counts for; empty for every table.</param>
/// <param name="LeaseMs">Lease length in milliseconds.</param>
/// <param name="Live">False once the lease expired.</param>
/// <param name="ExpiresIn">Time left on the lease (zero when expired).</param>
public readonly record struct WorkerState(uint Id, string Name, IReadOnlyList<string> Tables, int LeaseMs, bool Live, TimeSpan ExpiresIn);

/// <summary>A live worker that had not reached a consistent pull's target clock.</summary>
/// <param name="Worker">Worker id.</param>
/// <param name="Name">Registered name.</param>
/// <param name="Clock">Its clock on the table (the minimum over the table's ranges on this node).</param>
public readonly record struct LaggingWorker(uint Worker, string Name, ulong Clock);

/// <summary>How a clock wait ended.</summary>
public enum ClockWaitStatus
{
    /// <summary>Every live worker of the table reached the target (or none is live).</summary>
    Reached,
    /// <summary>The timeout passed first; <see cref="ClockWaitResult.Behind"/> names the workers behind.</summary>
    TimedOut,
    /// <summary>The table was deleted while the pull waited.</summary>
    TableDeleted,
    /// <summary>The store is closing (server shutdown).</summary>
    Closing,
}

/// <summary>The outcome of waiting for clocks.</summary>
/// <param name="Status">How the wait ended.</param>
/// <param name="ClockMin">The table's minimum clock over live workers when the wait ended (0 with no live worker).</param>
/// <param name="Behind">When timed out: the live workers still below the target.</param>
public readonly record struct ClockWaitResult(ClockWaitStatus Status, ulong ClockMin, IReadOnlyList<LaggingWorker> Behind)
{
    /// <summary>True when the clocks were reached.</summary>
    public bool Reached => Status == ClockWaitStatus.Reached;
}
