using System.Diagnostics;
using FASTER.core;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage;

/// <summary>Checkpoints: consistent, recoverable images of every table and the catalog.</summary>
public sealed partial class ParamStore
{
    /// <summary>
    /// Every push (rows plus its clock record) and every system-record write holds this shared; a checkpoint
    /// holds it exclusively only while FASTER shifts to the next version. So each push lies wholly before or
    /// wholly after the cut, and the recovered clocks describe exactly the recovered rows (DESIGN.md §6). FASTER's
    /// CPR alone cuts per session, which would split a batch spread over several sessions or rows.
    /// </summary>
    private readonly ReaderWriterLockSlim pushGate = new(LockRecursionPolicy.NoRecursion);

    /// <summary>Serializes checkpoints and compactions: both move the log's begin address.</summary>
    private readonly SemaphoreSlim maintenance = new(1, 1);

    /// <summary>Set by a compaction, cleared by the checkpoint after it (see <see cref="PurgeCheckpoints"/>).</summary>
    private bool compactedSinceCheckpoint;

    private long lastCheckpointTicks;   // UTC ticks; 0 = none. A long so readers need no lock.

    /// <summary>
    /// Checkpoints known to be whole, newest first: the one recovered on <see cref="Open"/> and those taken since.
    /// Purging keeps the first of these, so a broken newer checkpoint that recovery skipped is the first to go.
    /// </summary>
    private readonly List<Guid> wholeCheckpoints = [];

    /// <summary>
    /// When the newest checkpoint became durable: taken by this process, or the one recovered on <see cref="Open"/>.
    /// Null when there is none.
    /// </summary>
    public DateTimeOffset? LastCheckpoint
    {
        get
        {
            long ticks = Interlocked.Read(ref lastCheckpointTicks);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>
    /// Compacts the log if the rule in <see cref="CompactLog"/> says so, then takes a full snapshot checkpoint
    /// (index and log) of every table and the catalog, and deletes old checkpoints. Pushes and pulls keep flowing:
    /// FASTER splits operations into the versions before and after the checkpoint (CPR), and only the former are
    /// in it.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting; the checkpoint itself still completes in the background.</param>
    /// <remarks>
    /// <see cref="CheckpointType.Snapshot"/> writes the in-memory part of the log to a separate file. FoldOver would
    /// make every later update of those records copy them to the tail first (6× slower, log doubles; DESIGN.md §10).
    /// </remarks>
    public Task<CheckpointResult> CheckpointAsync(CancellationToken cancellationToken = default) => CheckpointCoreAsync(null, cancellationToken);

    /// <summary>
    /// <see cref="CheckpointAsync(CancellationToken)"/>, then, while the checkpoint's files are still pinned (no
    /// compaction, purge or other checkpoint can run), hands <paramref name="whileHeld"/> what it captured: a
    /// snapshot copies them from there.
    /// </summary>
    private async Task<CheckpointResult> CheckpointCoreAsync(Action<CheckpointImage>? whileHeld, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        if (options.ReadOnly) throw new InvalidOperationException("A snapshot opened for reading takes no checkpoints.");
        await maintenance.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var clock = Stopwatch.StartNew();
            // A checkpoint whose caller gave up waiting may still be running; FASTER runs one at a time.
            await store.CompleteCheckpointAsync(cancellationToken).ConfigureAwait(false);
            CompactIfWorthIt(force: false);   // synchronous, on this thread: see CompactLog for the rule
            (ValueTask<(bool, Guid)> checkpoint, long cut, CutContents contents) = StartCheckpointAtPushBoundary(cancellationToken);
            (bool started, Guid token) = await checkpoint.ConfigureAwait(false);
            if (!started) throw new InvalidOperationException("FASTER did not start the checkpoint: another state machine (checkpoint or index resize) is running.");
            bool sync = options.Durability == DurabilityMode.Fsync;
            // A snapshot checkpoint holds only the log above what FASTER had flushed; the rest stays in the hybrid
            // log's segments, which FASTER hands to the OS without a sync. They must be on the device before the
            // write-ahead log behind this checkpoint may go.
            if (sync) FileSync.Tree(LogDirectory);
            DateTimeOffset completedAt = DateTimeOffset.UtcNow;
            // Only now is the checkpoint complete: recovery skips one without a manifest.
            CheckpointManifest.Write(CheckpointDirectory, token, cut, completedAt, sync);
            SetLastCheckpoint(completedAt.UtcDateTime);
            checkpointCuts[token] = cut;
            PurgeCheckpoints(token, onlyNewest: compactedSinceCheckpoint);
            compactedSinceCheckpoint = false;
            TruncateLog();
            logger.CheckpointCompleted(token, clock.ElapsedMilliseconds);
            whileHeld?.Invoke(new CheckpointImage(token, cut, completedAt, contents, CheckpointDirectory, LogDirectory, store.Log.BeginAddress >> SegmentSizeBits));
            return new CheckpointResult(token, clock.Elapsed, completedAt);
        }
        finally
        {
            maintenance.Release();
        }
    }

    /// <summary>
    /// Starts a snapshot checkpoint with no push in flight and returns once FASTER is in the new version, so every
    /// later operation falls after the cut; the returned task completes when the checkpoint is durable. The cut
    /// record written first names the newest write-ahead log record the checkpoint holds. Pushes
    /// wait meanwhile, pulls do not: the shift took ~7 ms under four pushing threads on 2 cores.
    /// </summary>
    /// <remarks>
    /// FASTER's own driver (<c>TakeFullCheckpointAsync</c>, which runs synchronously up to its first I/O wait)
    /// moves the state machine; driving it with a pooled session's <c>Refresh</c> instead left that session a
    /// step ahead of the others and the checkpoint never left WAIT_INDEX_CHECKPOINT.
    /// </remarks>
    private (ValueTask<(bool Started, Guid Token)> Checkpoint, long Cut, CutContents Contents) StartCheckpointAtPushBoundary(CancellationToken cancellationToken)
    {
        pushGate.EnterWriteLock();
        try
        {
            long cut = WriteCutRecord();
            CutContents contents = CaptureContents();
            long version = store.CurrentVersion;
            ValueTask<(bool, Guid)> checkpoint = store.TakeFullCheckpointAsync(CheckpointType.Snapshot, cancellationToken);
            var deadline = Stopwatch.StartNew();
            var spin = new SpinWait();
            while (store.CurrentVersion == version && !checkpoint.IsCompleted)
            {
                if (deadline.Elapsed > VersionShiftLimit)
                    throw new TimeoutException($"FASTER did not move past version {version} within {VersionShiftLimit.TotalSeconds} s of starting a checkpoint.");
                spin.SpinOnce(sleep1Threshold: -1);
            }
            return (checkpoint, cut, contents);
        }
        finally
        {
            pushGate.ExitWriteLock();
        }
    }

    private static readonly TimeSpan VersionShiftLimit = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Keeps the newest <see cref="StoreOptions.CheckpointsToKeep"/> checkpoints; after a compaction only the
    /// newest. Why: a checkpoint truncates the log files below its begin address, and a compaction since the
    /// previous checkpoint moved that address past records the older checkpoints still need.
    /// </summary>
    private void PurgeCheckpoints(Guid newest, bool onlyNewest)
    {
        int keep = onlyNewest ? 1 : options.CheckpointsToKeep;
        wholeCheckpoints.Insert(0, newest);
        wholeCheckpoints.RemoveRange(Math.Min(keep, wholeCheckpoints.Count), Math.Max(0, wholeCheckpoints.Count - keep));
        var kept = new HashSet<Guid>(wholeCheckpoints);
        int purged = 0;
        foreach (Guid token in checkpointManager.GetLogCheckpointTokens().Concat(checkpointManager.GetIndexCheckpointTokens()).Distinct().ToList())
        {
            if (kept.Contains(token)) continue;
            checkpointManager.Purge(token);   // deletes the token's log and index checkpoint folders
            purged++;
        }
        if (purged > 0) logger.CheckpointsPurged(purged, onlyNewest);
    }

    private string CheckpointDirectory => Path.Combine(Path.GetFullPath(options.DataDirectory), "checkpoints");

    /// <summary>The hybrid log's segments, <c>DATA/log/hlog.log.N</c>.</summary>
    private string LogDirectory => Path.Combine(Path.GetFullPath(options.DataDirectory), "log");

    private void SetLastCheckpoint(DateTime utc) => Interlocked.Exchange(ref lastCheckpointTicks, utc.Ticks);
}
