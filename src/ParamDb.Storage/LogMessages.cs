using Microsoft.Extensions.Logging;

namespace ParamDb.Storage;

/// <summary>Every log line of the storage layer, source-generated so a disabled level costs one check.</summary>
internal static partial class LogMessages
{
    [LoggerMessage(1, LogLevel.Information, "Opened store in {DataDirectory}: {Tables} tables, {Rows} rows, log memory {MemoryMiB} MiB, recovered from {Checkpoint} in {ElapsedMs} ms")]
    public static partial void StoreOpened(this ILogger logger, string dataDirectory, int tables, long rows, long memoryMiB, string checkpoint, long elapsedMs);

    [LoggerMessage(2, LogLevel.Warning, "Could not recover checkpoint {Token}; trying the previous one")]
    public static partial void RecoveryFailed(this ILogger logger, Guid token, Exception exception);

    [LoggerMessage(3, LogLevel.Information, "Checkpoint {Token} version {Version} ({Kind}) completed in {ElapsedMs} ms; pushes held {HeldMs} ms at its start")]
    public static partial void CheckpointCompleted(this ILogger logger, Guid token, long version, string kind, long elapsedMs, long heldMs);

    [LoggerMessage(50, LogLevel.Information, "FASTER wrote a whole log snapshot {Token} instead of an increment (the log had flushed past the base); taking a full checkpoint")]
    public static partial void IncrementRefused(this ILogger logger, Guid token);

    [LoggerMessage(4, LogLevel.Information, "Deleted {Count} old checkpoints (only the newest kept: {AfterCompaction})")]
    public static partial void CheckpointsPurged(this ILogger logger, int count, bool afterCompaction);

    [LoggerMessage(5, LogLevel.Information, "Compacted the log from {BeforeMiB} MiB to {AfterMiB} MiB ({LiveMiB} MiB live) in {ElapsedMs} ms")]
    public static partial void Compacted(this ILogger logger, long beforeMiB, long afterMiB, long liveMiB, long elapsedMs);

    [LoggerMessage(6, LogLevel.Information, "Created table {Name} (id {Id}, dim {Dim})")]
    public static partial void TableCreated(this ILogger logger, string name, uint id, int dim);

    [LoggerMessage(7, LogLevel.Information, "Deleted table {Name} (id {Id}); its rows go at the next compaction")]
    public static partial void TableDeleted(this ILogger logger, string name, uint id);

    [LoggerMessage(8, LogLevel.Information, "{Rows} recovered rows belong to deleted tables; compaction will drop them")]
    public static partial void OrphanRows(this ILogger logger, long rows);

    [LoggerMessage(9, LogLevel.Warning, "Closing the log files did not finish within 5 s (a lost wake-up in FASTER's device); continuing without waiting")]
    public static partial void LogDeviceCloseTimedOut(this ILogger logger);

    [LoggerMessage(10, LogLevel.Information, "Registered worker {Id} ({Name}), lease {LeaseMs} ms")]
    public static partial void WorkerRegistered(this ILogger logger, uint id, string name, int leaseMs);

    [LoggerMessage(11, LogLevel.Information, "Removed worker {Id}")]
    public static partial void WorkerRemoved(this ILogger logger, uint id);

    [LoggerMessage(12, LogLevel.Information, "Recovered {Workers} workers and {Clocks} vector-clock records")]
    public static partial void ClocksRecovered(this ILogger logger, int workers, int clocks);

    [LoggerMessage(13, LogLevel.Information, "Replayed {Records} write-ahead log records after checkpoint cut {Cut} in {ElapsedMs} ms")]
    public static partial void WalReplayed(this ILogger logger, long records, long cut, long elapsedMs);

    [LoggerMessage(14, LogLevel.Information, "Deleted {Segments} write-ahead log segments below record {Lsn}: every kept checkpoint holds them")]
    public static partial void WalTruncated(this ILogger logger, int segments, long lsn);

    [LoggerMessage(19, LogLevel.Warning, "Could not delete write-ahead log segments below record {Lsn}; the next checkpoint tries again")]
    public static partial void WalTruncationFailed(this ILogger logger, long lsn, Exception exception);

    [LoggerMessage(15, LogLevel.Information, "Durability {Mode}: replayed records are now in checkpoint {Token}; the write-ahead log was removed")]
    public static partial void WalFoldedIntoCheckpoint(this ILogger logger, DurabilityMode mode, Guid token);

    [LoggerMessage(16, LogLevel.Warning, "Checkpoint {Token} never completed (no manifest); skipping it")]
    public static partial void CheckpointUnfinished(this ILogger logger, Guid token);

    [LoggerMessage(17, LogLevel.Error, "Checkpoint {Token} is damaged: {Problem}; falling back to an older one")]
    public static partial void CheckpointDamaged(this ILogger logger, Guid token, string problem);

    [LoggerMessage(18, LogLevel.Warning, "None of the {Count} checkpoints can be recovered, but the write-ahead log reaches back to its first record: rebuilding the state from the log alone")]
    public static partial void RebuildingFromLog(this ILogger logger, int count);

    [LoggerMessage(70, LogLevel.Information, "Loaded the recovered catalog, row counts and clocks ({Source}) in {ElapsedMs} ms: {Tables} tables, {Workers} workers")]
    public static partial void RecoveredStateLoaded(this ILogger logger, RecoveredStateSource source, int tables, int workers, long elapsedMs);

    [LoggerMessage(71, LogLevel.Information, "Write-ahead log replay read {MiB} MiB in {Segments} segments; applying waited {WaitMs} ms of {ElapsedMs} ms for reads")]
    public static partial void WalReplayRead(this ILogger logger, long miB, int segments, long waitMs, long elapsedMs);

    [LoggerMessage(30, LogLevel.Information, "Export of table {Name} ready: {Scanned} keys scanned, {Rows} distinct rows, {Runs} sorted runs on disk, in {ElapsedMs} ms")]
    public static partial void ExportPrepared(this ILogger logger, string name, long scanned, long rows, int runs, long elapsedMs);

    [LoggerMessage(31, LogLevel.Information, "Deleted {Count} export folders under {Directory} left by an earlier process")]
    public static partial void AbandonedExportsDeleted(this ILogger logger, int count, string directory);

    [LoggerMessage(32, LogLevel.Warning, "Could not delete {Directory}, left by an earlier export; delete it by hand")]
    public static partial void AbandonedExportNotDeleted(this ILogger logger, string directory, Exception exception);

    [LoggerMessage(33, LogLevel.Warning, "Discarded {Directory}: a restore whose copy never finished; the node keeps its data")]
    public static partial void RestoreStagingDiscarded(this ILogger logger, string directory);

    [LoggerMessage(34, LogLevel.Information, "Restore finished in {Directory}: the snapshot's checkpoint and log replaced the node's")]
    public static partial void RestoreRolledForward(this ILogger logger, string directory);

    [LoggerMessage(35, LogLevel.Information, "Snapshot {Name} created from checkpoint {Token}: {Tables} tables, {Rows} rows, {Bytes} bytes, copied in {ElapsedMs} ms")]
    public static partial void SnapshotCreated(this ILogger logger, string name, Guid token, int tables, long rows, long bytes, long elapsedMs);

    [LoggerMessage(36, LogLevel.Information, "Snapshot {Name} deleted{Deferred}")]
    public static partial void SnapshotDeleted(this ILogger logger, string name, string deferred);

    [LoggerMessage(37, LogLevel.Warning, "Deleted {Count} snapshot folders left unfinished or deleted by an earlier process under {Directory}")]
    public static partial void SnapshotLeftoversDeleted(this ILogger logger, int count, string directory);

    [LoggerMessage(38, LogLevel.Warning, "Snapshot folder {Directory} has no readable snapshot.json; it is not listed")]
    public static partial void SnapshotUnreadable(this ILogger logger, string directory, Exception exception);

    [LoggerMessage(39, LogLevel.Information, "Snapshot {Name} staged for restore in {ElapsedMs} ms")]
    public static partial void RestoreStaged(this ILogger logger, string name, long elapsedMs);

    [LoggerMessage(60, LogLevel.Warning, "Could not delete snapshot {Name}, beyond --snapshots-to-keep; trying again after the next snapshot")]
    public static partial void SnapshotNotRetired(this ILogger logger, string name, Exception exception);

    [LoggerMessage(40, LogLevel.Information, "Imported {Rows} rows into table {Name} (id {Id}) from a {Bytes}-byte file ({NonFinite} non-finite values) in {ElapsedMs} ms")]
    public static partial void Imported(this ILogger logger, long rows, string name, uint id, long bytes, long nonFinite, long elapsedMs);

    [LoggerMessage(41, LogLevel.Information, "Deleted {Count} spool files (imports, cluster merges) under {Directory} left by an earlier process")]
    public static partial void AbandonedImportsDeleted(this ILogger logger, int count, string directory);

    [LoggerMessage(42, LogLevel.Warning, "Could not delete {Path}, a spool file left by an earlier process; delete it by hand")]
    public static partial void AbandonedImportNotDeleted(this ILogger logger, string path, Exception exception);

    [LoggerMessage(72, LogLevel.Warning, "{Damage}. Accepted: those records are dropped; the damaged bytes were moved to {Aside}")]
    public static partial void WalLossAccepted(this ILogger logger, string damage, string aside);

    [LoggerMessage(73, LogLevel.Warning, "The write-ahead log ends in a torn record: {Segment} from byte {Offset} ({Bytes} bytes, nothing intact after them) is dropped, and the log continues after record {LastLsn}. A crash during a write leaves this; damage to a finished last record looks the same")]
    public static partial void WalTornTail(this ILogger logger, string segment, long offset, long bytes, long lastLsn);

    [LoggerMessage(74, LogLevel.Information, "The store's ranges changed from {Before} to {After}; every vector clock moved with its positions")]
    public static partial void RangesChanged(this ILogger logger, int before, int after);
}
