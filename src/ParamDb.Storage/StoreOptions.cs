namespace ParamDb.Storage;

/// <summary>Where and how a <see cref="ParamStore"/> keeps its data.</summary>
/// <remarks>
/// Layout below <see cref="DataDirectory"/>: <c>log/hlog.log.N</c> (the FASTER hybrid log, 128 MiB segments)
/// and <c>checkpoints/</c> (FASTER's <c>index-checkpoints/</c> and <c>cpr-checkpoints/</c>, one folder per token).
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
}
