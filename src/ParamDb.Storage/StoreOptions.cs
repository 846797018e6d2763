namespace ParamDb.Storage;

/// <summary>Where and how a <see cref="ParamStore"/> keeps its data.</summary>
/// <remarks>
/// Layout below <see cref="DataDirectory"/>: <c>log/hlog.log.N</c> (the FASTER hybrid log, 128 MiB segments),
/// <c>checkpoints/</c> (FASTER's <c>index-checkpoints/</c> and <c>cpr-checkpoints/</c>, one folder per token)
/// <c>wal/</c> (the write-ahead log, <c>wal-{first LSN}.log</c> segments) and <c>tmp/</c> (sorted key runs of
/// exports while they run), <c>snapshots/</c> (one folder per named snapshot) and, while a restore is under way,
/// <c>restore/</c> and <c>restore-old/</c>.
/// </remarks>
public sealed class StoreOptions
{
    /// <summary>Root folder of the store; created if missing.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>
    /// Hybrid-log memory budget in bytes (default 1 GiB), rounded down to a power of two, at least 8 MiB.
    /// Rows beyond it spill to the on-disk log. The hash index takes another 1/16 of it.
    /// </summary>
    public long MemoryBytes { get; init; } = 1L << 30;

    /// <summary>
    /// Checkpoints kept on disk (default 2); older ones are deleted. After a log compaction only the newest is
    /// kept, because the checkpoint that follows a compaction truncates the log the older ones still need.
    /// </summary>
    public int CheckpointsToKeep { get; init; } = 2;

    /// <summary>
    /// The ring whose arcs are this node's ranges, the unit of vector clocks (docs/consistency.md, docs/design.md). A single node
    /// owns every arc of its own ring; the default is the 64 tokens of a node named "paramdb". Recovered clock
    /// records name their ranges by token, so a different ring recovers only the clocks of the tokens it keeps.
    /// </summary>
    public ParamDb.Protocol.Ring Ring { get; init; } = DefaultRing;

    /// <summary>When a push counts as durable, so it may be acknowledged (default <see cref="DurabilityMode.Wal"/>).</summary>
    public DurabilityMode Durability { get; init; } = DurabilityMode.Wal;

    /// <summary>
    /// Write-ahead log segment size in bytes (default 64 MiB): the unit in which the log is deleted behind a
    /// checkpoint. A single record larger than this gets a segment of its own.
    /// </summary>
    public long WalSegmentBytes { get; init; } = 64L << 20;

    /// <summary>
    /// Start even when the write-ahead log is damaged before its end with intact records after the damage (which
    /// otherwise refuses the open): the records from the damage on are moved to <c>DATA/damaged/</c> and dropped,
    /// and <see cref="ParamStore.AcceptedLoss"/> says what went. For an operator who has read the refusal and has
    /// nothing better to restore (<c>paramdb recover --accept-loss</c>); never a default.
    /// </summary>
    public bool AcceptWalLoss { get; init; }

    /// <summary>
    /// Opens a snapshot to read it (exports): no write-ahead log, no leases, no checkpoints, no restore roll
    /// forward. Only the snapshot library sets it; nothing may write to such a store.
    /// </summary>
    internal bool ReadOnly { get; init; }

    /// <summary>Where exports sort their keys; null means <c>DATA/tmp/</c>. A snapshot reader points it at the node's.</summary>
    internal string? TempDirectory { get; init; }

    /// <summary>
    /// Whether checkpoints after a full one may be increments (the default). Off, every checkpoint is full: tests
    /// of the fall back between whole checkpoint folders use it.
    /// </summary>
    internal bool IncrementalCheckpoints { get; init; } = true;

    /// <summary>
    /// Tests only: how long each checkpoint write's completion reaches FASTER after the write (zero: at once), to
    /// widen the window between a page's copy and FASTER's completion callback that a busy thread pool opens.
    /// </summary>
    internal TimeSpan CheckpointWriteCompletionDelay { get; init; }

    /// <summary>The clock that worker leases and clock-wait timeouts follow (tests may substitute one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    private static readonly ParamDb.Protocol.Ring DefaultRing = ParamDb.Protocol.Ring.ForNode("paramdb");

    /// <summary>A single node's ranges: 64 tokens hashed from the name "paramdb", the same on every single node and every start.</summary>
    public static ParamDb.Protocol.Ring SingleNodeRing => DefaultRing;
}

/// <summary>When a write (push, tick, table or worker change) is acknowledged, and so what a crash can lose.</summary>
public enum DurabilityMode
{
    /// <summary>
    /// Once its write-ahead log record has been written to the operating system. Survives the process being
    /// killed (kill -9, a crash); a power loss can lose the last moments.
    /// </summary>
    Wal,
    /// <summary>Once its write-ahead log record has been fsynced: survives power loss, at the device's sync cost.</summary>
    Fsync,
    /// <summary>At once, in memory, with no write-ahead log: a crash loses everything after the last checkpoint.</summary>
    Checkpoint,
}
