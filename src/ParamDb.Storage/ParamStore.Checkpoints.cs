using System.Diagnostics;
using FASTER.core;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage;

/// <summary>Checkpoints: consistent, recoverable images of every table and the catalog.</summary>
public sealed partial class ParamStore
{
    /// <summary>
    /// Every push (rows plus its clock record) and every system-record write holds this shared; a checkpoint
    /// holds it exclusively only while FASTER shifts to the next version (for a full checkpoint, until the
    /// snapshot's end is fixed). So each push lies wholly before or wholly after the cut, and the recovered clocks
    /// describe exactly the recovered rows (docs/consistency.md). FASTER's CPR alone cuts per session, which would split
    /// a batch spread over several sessions or rows.
    /// </summary>
    private readonly ReaderWriterLockSlim _pushGate = new(LockRecursionPolicy.NoRecursion);

    /// <summary>Set while a checkpoint holds <see cref="_pushGate"/> or waits for it; completed when it lets go.</summary>
    private TaskCompletionSource? _pushGateClosed;

    /// <summary>How long the checkpoint being taken kept pushes out, for its log line; under <see cref="_maintenance"/>.</summary>
    private TimeSpan _pushesHeld;

    /// <summary>
    /// Completes at once, or, while a checkpoint keeps pushes out, once it lets them in. Request handlers await it
    /// before a push, so a push that arrives then waits without holding a thread: blocked pushes had taken every
    /// thread-pool thread on 2 cores, and the checkpoint's own I/O completions then waited for the pool to grow
    /// (pushes held 0.7–2 s by a full checkpoint instead of ~0.3 s). A push that gets past it as a checkpoint
    /// starts still waits at the gate itself, briefly.
    /// </summary>
    internal ValueTask WhenPushGateOpenAsync(CancellationToken cancellationToken = default)
    {
        TaskCompletionSource? closed = Volatile.Read(ref _pushGateClosed);
        return closed is null ? ValueTask.CompletedTask : new ValueTask(closed.Task.WaitAsync(cancellationToken));
    }

    /// <summary>Serializes checkpoints and compactions: both move the log's begin address.</summary>
    private readonly SemaphoreSlim _maintenance = new(1, 1);

    /// <summary>Set by a compaction, cleared by the checkpoint after it (see <see cref="PurgeCheckpoints"/>).</summary>
    private bool _compactedSinceCheckpoint;

    /// <summary>Checksums of the on-disk log for each manifest; under <see cref="_maintenance"/>.</summary>
    private HybridLogChecksums LogChecksums => _lazyLogChecksums ??= new HybridLogChecksums(LogDirectory, SegmentSizeBits);

    private HybridLogChecksums? _lazyLogChecksums;

    /// <summary>
    /// How far FASTER has written the log to its segments: every byte below is on disk and never changes again.
    /// FASTER 2.6.5 keeps it in its allocator and does not expose it (<see cref="LogAccessor{Key, Value}"/> gives
    /// only the head, which can lag it by the pages in flight), so it is read by reflection; FASTER.core is no longer
    /// developed, so the names cannot move under the pinned version, and a test checks they resolve
    /// (<see cref="ReadsFlushedAddress"/>). Falls back to the head, which only makes the rules that use it stricter.
    /// </summary>
    private static long FlushedUntilAddress(FasterKV<RowKey, SpanByte> store) =>
        FlushedField is { } field && HlogField!.GetValue(store) is { } allocator && field.GetValue(allocator) is long flushed
            ? flushed
            : store.Log.HeadAddress;

    private static readonly System.Reflection.FieldInfo? HlogField =
        typeof(FasterKV<RowKey, SpanByte>).GetField("hlog", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public);

    /// <summary>The allocator's public <c>FlushedUntilAddress</c> field, found once on the field's declared type.</summary>
    private static readonly System.Reflection.FieldInfo? FlushedField = HlogField?.FieldType.GetField("FlushedUntilAddress");

    /// <summary>Whether <see cref="FlushedUntilAddress"/> reads FASTER's own address rather than falling back (tests).</summary>
    internal static bool ReadsFlushedAddress => FlushedField is not null;

    private long _lastCheckpointTicks;   // UTC ticks; 0 = none. A long so readers need no lock.

    /// <summary>
    /// Checkpoints known to be whole, newest first: the one recovered on <see cref="Open"/> and those taken since.
    /// Purging keeps the first of these, so a broken newer checkpoint that recovery skipped is the first to go.
    /// </summary>
    private readonly List<CheckpointId> _wholeCheckpoints = [];

    /// <summary>
    /// The full checkpoint this process took last, which later checkpoints extend with increments; null until the
    /// first full one (so the first checkpoint after an open is always full: FASTER's delta log of a recovered
    /// folder may hold increments past the version recovered).
    /// </summary>
    private Guid? _incrementBase;

    /// <summary>The log's tail when <see cref="_incrementBase"/> was cut: FASTER extends a snapshot only while its
    /// end is above what the log has flushed.</summary>
    private long _incrementBaseTail;

    /// <summary>
    /// What FASTER had flushed of the log when <see cref="_incrementBase"/> started: a recovery of the base reads the
    /// log's segments below it and the base's snapshot above it.
    /// </summary>
    private long _incrementBaseFlushed;

    /// <summary>Whether the whole log was in memory (nothing evicted to its segments) when <see cref="_incrementBase"/> started.</summary>
    private bool _incrementBaseInMemory;

    /// <summary>Increments taken on <see cref="_incrementBase"/>.</summary>
    private int _increments;

    /// <summary>
    /// Increments on one base before the next checkpoint is full again. Each increment adds the rows changed since
    /// the previous one to the delta log, which recovery reads whole, so a long chain slows restarts.
    /// </summary>
    private const int MaxIncrements = 8;

    /// <summary>
    /// When the newest checkpoint became durable: taken by this process, or the one recovered on <see cref="Open"/>.
    /// Null when there is none.
    /// </summary>
    public DateTimeOffset? LastCheckpoint
    {
        get
        {
            long ticks = Interlocked.Read(ref _lastCheckpointTicks);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>
    /// Compacts the log if the rule in <see cref="CompactLog"/> says so, then takes a checkpoint of every table and
    /// the catalog, and deletes old checkpoints. Pushes and pulls keep flowing: FASTER splits operations into the
    /// versions before and after the checkpoint (CPR), and only the former are in it.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting; the checkpoint itself still completes in the background.</param>
    /// <remarks>
    /// <see cref="CheckpointType.Snapshot"/> writes the in-memory part of the log to a separate file. FoldOver would
    /// make every later update of those records copy them to the tail first (6× slower, log doubles; docs/design.md#facts-measured-on-the-development-machine).
    /// After a full checkpoint (index and log), the next ones are incremental while they can be (see
    /// <see cref="CanIncrement"/>): FASTER appends only the records changed since the previous one to the full
    /// checkpoint's delta log, so their cost follows the rows pushed, not the table's size.
    /// </remarks>
    public Task<CheckpointResult> CheckpointAsync(CancellationToken cancellationToken = default) => CheckpointCoreAsync(null, cancellationToken);

    /// <summary>
    /// <see cref="CheckpointAsync(CancellationToken)"/>, then, while the checkpoint's files are still pinned (no
    /// compaction, purge or other checkpoint can run), hands <paramref name="whileHeld"/> what it captured: a
    /// snapshot copies them from there.
    /// </summary>
    private async Task<CheckpointResult> CheckpointCoreAsync(Action<CheckpointImage>? whileHeld, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_options.ReadOnly) throw new InvalidOperationException("A snapshot opened for reading takes no checkpoints.");
        await _maintenance.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var clock = Stopwatch.StartNew();
            _pushesHeld = TimeSpan.Zero;
            // A checkpoint whose caller gave up waiting may still be running; FASTER runs one at a time. The previous
            // checkpoint's log deletes may be too: wait for them, so they never overlap the next ones.
            await _store.CompleteCheckpointAsync(cancellationToken).ConfigureAwait(false);
            await _walTruncation.WaitAsync(cancellationToken).ConfigureAwait(false);
            CompactIfWorthIt(force: false);   // synchronous, on this thread: see CompactLog for the rule
            // What FASTER has written of the log before this checkpoint starts: a lower bound of the flushed address
            // the checkpoint records, below which a recovery reads the log's segments as they are and FASTER never
            // writes again (above it, a recovery rewrites pages from the snapshot).
            long flushedAtStart = FlushedUntilAddress(_store);
            bool inMemoryAtStart = _store.Log.HeadAddress <= _store.Log.BeginAddress;
            bool incremental = CanIncrement();
            (Task<(bool, Guid)> checkpoint, long cut, long version, long tail, CutContents contents) = StartCheckpointAtPushBoundary(incremental, cancellationToken);
            Guid token = await StartedAsync(checkpoint).ConfigureAwait(false);
            if (incremental && token != _incrementBase)
            {
                // The log flushed past the base between CanIncrement and FASTER's own test, so FASTER wrote a whole
                // log-only snapshot: without an index it is no recovery point (no manifest; purged below). Take a
                // full one instead.
                _logger.IncrementRefused(token);
                incremental = false;
                (checkpoint, cut, version, tail, contents) = StartCheckpointAtPushBoundary(incremental: false, cancellationToken);
                token = await StartedAsync(checkpoint).ConfigureAwait(false);
            }
            // FASTER's files of this checkpoint were handed to the OS (CheckpointFileDevice) without a sync, so no push
            // waited for one while FASTER wrote them. In `checkpoint` mode a checkpoint is the only recovery point,
            // and in `fsync` mode nothing acknowledged may rest on a volatile cache, so there these files, the hybrid
            // log's segments (a snapshot checkpoint holds only the log above what FASTER had flushed) and the manifest
            // are synced before the write-ahead log behind this checkpoint may go. In `wal` mode, which promises to
            // survive a crash of the process, they are not: an fsync of the tree measured 0.7 s under push load, and
            // pushes stalled for most of it behind the file system's journal.
            bool sync = _options.Durability != DurabilityMode.Wal;
            if (sync)
            {
                CheckpointManifest.Sync(CheckpointDirectory, token);
                FileSync.Tree(LogDirectory);
            }
            DateTimeOffset completedAt = DateTimeOffset.UtcNow;
            // The on-disk log this checkpoint stands on: what was flushed before it (an increment stands on its
            // base's), which FASTER never rewrites, and a recovery reads as it is.
            List<(string, long, uint)> logPrefixes = LogChecksums.Through(_store.Log.BeginAddress, incremental ? _incrementBaseFlushed : flushedAtStart);
            // Only now is the checkpoint complete: recovery skips one without a manifest.
            if (incremental)
            {
                CheckpointManifest.WriteIncrement(CheckpointDirectory, token, version, cut, completedAt, sync, _writtenChecksums, logPrefixes);
                _increments++;
            }
            else
            {
                CheckpointManifest.Write(CheckpointDirectory, token, version, cut, completedAt, sync, _writtenChecksums, logPrefixes);
                (_incrementBase, _incrementBaseTail, _incrementBaseFlushed, _incrementBaseInMemory, _increments) = (token, tail, flushedAtStart, inMemoryAtStart, 0);
            }
            var id = new CheckpointId(token, version);
            SetLastCheckpoint(completedAt.UtcDateTime);
            _checkpointCuts[id] = cut;
            PurgeCheckpoints(id, onlyNewest: _compactedSinceCheckpoint);
            _compactedSinceCheckpoint = false;
            TruncateLog();
            _logger.CheckpointCompleted(token, version, incremental ? "incremental" : "full", clock.ElapsedMilliseconds, (long)_pushesHeld.TotalMilliseconds);
            whileHeld?.Invoke(new CheckpointImage(token, cut, completedAt, contents, CheckpointDirectory, LogDirectory, _store.Log.BeginAddress >> SegmentSizeBits));
            return new CheckpointResult(token, clock.Elapsed, completedAt);
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>The token of a checkpoint FASTER started and finished; throws when it refused to start one.</summary>
    private static async Task<Guid> StartedAsync(Task<(bool Started, Guid Token)> checkpoint)
    {
        (bool started, Guid token) = await checkpoint.ConfigureAwait(false);
        if (!started) throw new InvalidOperationException("FASTER did not start the checkpoint: another state machine (checkpoint or index resize) is running.");
        return token;
    }

    /// <summary>
    /// Whether the next checkpoint can be an increment on <see cref="_incrementBase"/>: there is one, no compaction
    /// moved records since (the increment would not describe them), the chain is short, the log has not flushed
    /// past the base's end (FASTER's own condition; the tail at the base's cut is a lower bound of that end, and the
    /// read-only address an upper bound of what is flushed), and the whole log is in memory, as it was when the
    /// base started, with nothing flushed since.
    /// </summary>
    private bool CanIncrement()
    {
        if (!_options.IncrementalCheckpoints || _incrementBase is not { } token || _compactedSinceCheckpoint || _increments >= MaxIncrements
            || _incrementBaseTail <= _store.Log.ReadOnlyAddress
            // Only while the whole log is in memory, now and when the base was taken, with nothing flushed since.
            // With part of the log on disk, the first 73-1,255 rows pushed after a full checkpoint were missing
            // from the increment after it (one push short after a crash, in 4 of 5 runs of
            // LargerThanMemoryCrashTests before this rule, 0 of 32 after): FASTER's increment writes changed
            // records only from what it has flushed, and a recovery reads the base's snapshot above the base's
            // flushed address, so the on-disk part is where they slip through. In-memory tables keep increments.
            || !_incrementBaseInMemory || _store.Log.HeadAddress > _store.Log.BeginAddress
            || FlushedUntilAddress(_store) > _incrementBaseFlushed)
            return false;
        // When the increments add up to half the base, most rows change between checkpoints: a full one costs
        // little more and keeps recovery from reading the chain. The base counts its hash index: a full checkpoint
        // writes it while pushes wait (1/16 of the log memory, 128 MiB at --memory 2g: 73–128 ms), and for a table
        // far smaller than the index "half the snapshot" made every other checkpoint full: under W-dense in `wal`
        // mode, with a checkpoint per 2 GiB of log (about one a second), each increment rewrote the whole table.
        (long delta, long full) = CheckpointManifest.Sizes(CheckpointDirectory, token);
        return delta <= full / 2;
    }

    /// <summary>
    /// Starts a snapshot checkpoint (full, or an increment) with no push in flight and returns once FASTER is in
    /// the new version, so every later operation falls after the cut; the returned task completes when the
    /// checkpoint is durable. Also returns the checkpoint's FASTER version (what recovery passes as
    /// <c>recoverTo</c>) and the log's tail at the cut. The cut record written first names the newest
    /// write-ahead log record the checkpoint holds. Pushes wait meanwhile, pulls do not: the gate was held 4–40 ms
    /// for an increment under two threads pushing 4 MiB batches on 2 cores (most of it waiting for the pushes in
    /// flight). For a full checkpoint the gate stays shut until FASTER has fixed the snapshot's end and issued its
    /// writes (see remarks).
    /// </summary>
    /// <remarks>
    /// <para><b>Why a full checkpoint holds pushes until its snapshot writes are issued.</b> FASTER 2.6.5 clears
    /// the dirty bit of every mutable record of a snapshot page in that page's write <i>completion</i>
    /// (<c>AsyncFlushPageToDeviceCallback</c>), not before the write copies the page. A record a push of the new
    /// version created inside the snapshot's range (between the checkpoint's start and its end, fixed when the
    /// snapshot writes are issued) may be updated in place between the copy and the completion: the snapshot
    /// holds the older value, and the dirty bit that would put the newer one into the next increment is gone. A
    /// recovery to that increment then lost acknowledged pushes, and the write-ahead log could not bring them
    /// back: they were before the increment's cut. The crash test saw it once in CI (a row one push behind its
    /// clock), where completions waited behind a busy thread pool. With no push between the checkpoint's start and
    /// the snapshot's end there is no such record; an increment copies and clears each record itself, before it
    /// writes, so it has no such window and lets pushes go as soon as the version moves.</para>
    /// <para>FASTER's own driver (<c>TakeFullCheckpointAsync</c>, which runs synchronously up to its first I/O
    /// wait) moves the state machine; driving it with a pooled session's <c>Refresh</c> instead left that session
    /// a step ahead of the others and the checkpoint never left WAIT_INDEX_CHECKPOINT.</para>
    /// </remarks>
    private (Task<(bool Started, Guid Token)> Checkpoint, long Cut, long Version, long Tail, CutContents Contents) StartCheckpointAtPushBoundary(
        bool incremental, CancellationToken cancellationToken)
    {
        long shut = Stopwatch.GetTimestamp();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _pushGateClosed, closed);
        try
        {
            _pushGate.EnterWriteLock();
            try
            {
                long cut = WriteCutRecord();
                CutContents contents = CaptureContents();
                long version = _store.CurrentVersion;
                long tail = _store.Log.TailAddress;
                // On a thread of its own: FASTER's driver runs synchronously until its first I/O wait, and an
                // increment's whole delta write can fall inside that; this thread lets pushes go as soon as the
                // version has moved. Not the thread pool, whose threads may all be pushes waiting for this gate.
                Task<(bool, Guid)> checkpoint = Task.Factory.StartNew(
                    () => (incremental
                        ? _store.TakeHybridLogCheckpointAsync(CheckpointType.Snapshot, tryIncremental: true, cancellationToken)
                        : _store.TakeFullCheckpointAsync(CheckpointType.Snapshot, cancellationToken)).AsTask(),
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
                var deadline = Stopwatch.StartNew();
                var spin = new SpinWait();
                while (!checkpoint.IsCompleted && !PushesMayGo(_store.SystemState, version, incremental))
                {
                    if (_store.CurrentVersion != version)
                    {
                        // A full checkpoint writing its hash index: milliseconds to seconds (it grows with the log
                        // memory), bounded by the disk, and this thread has no core to spare for spinning meanwhile.
                        Thread.Sleep(1);
                        continue;
                    }
                    if (deadline.Elapsed > VersionShiftLimit)
                        throw new TimeoutException($"FASTER did not move past version {version} within {VersionShiftLimit.TotalSeconds} s of starting a checkpoint.");
                    spin.SpinOnce(sleep1Threshold: -1);
                }
                return (checkpoint, cut, version, tail, contents);
            }
            finally
            {
                _pushGate.ExitWriteLock();
            }
        }
        finally
        {
            Volatile.Write(ref _pushGateClosed, null);
            closed.SetResult();
            _pushesHeld += Stopwatch.GetElapsedTime(shut);
        }
    }

    private static readonly TimeSpan VersionShiftLimit = TimeSpan.FromSeconds(10);

    /// <summary>FASTER's checkpoint phase now, without the flag of a phase being left (tests follow a checkpoint with it).</summary>
    internal Phase CheckpointPhase => _store.SystemState.Phase & ~Phase.INTERMEDIATE;

    /// <summary>
    /// Whether a checkpoint of <paramref name="version"/> has gone far enough for pushes to resume: an increment
    /// once the version has moved; a full checkpoint once its snapshot's end is fixed and its writes issued
    /// (WAIT_FLUSH or later; see <see cref="StartCheckpointAtPushBoundary"/>).
    /// </summary>
    private static bool PushesMayGo(SystemState state, long version, bool incremental)
    {
        if (state.Version == version) return false;
        if (incremental) return true;
        // A phase being left carries the INTERMEDIATE flag; WAIT_INDEX_CHECKPOINT | INTERMEDIATE is the moment
        // FASTER fixes the snapshot's end and issues its writes, so it does not count yet.
        return (state.Phase & ~Phase.INTERMEDIATE) is Phase.WAIT_FLUSH or Phase.PERSISTENCE_CALLBACK or Phase.REST;
    }

    /// <summary>
    /// Keeps the newest <see cref="StoreOptions.CheckpointsToKeep"/> checkpoints (an increment counts as one) plus,
    /// when those all share one folder, the newest of the folder before; after a compaction only the newest. Why: a checkpoint truncates the log files
    /// below its begin address, and a compaction since the previous checkpoint moved that address past records the
    /// older checkpoints still need.
    /// </summary>
    private void PurgeCheckpoints(CheckpointId newest, bool onlyNewest)
    {
        int keep = onlyNewest ? 1 : _options.CheckpointsToKeep;
        _wholeCheckpoints.Insert(0, newest);
        int count = Math.Min(keep, _wholeCheckpoints.Count);
        if (!onlyNewest && keep > 1)
        {
            // Increments share their folder's full checkpoint: if that is damaged, all of them are. So keep the
            // newest version of the previous folder too, and the write-ahead log back to its cut.
            bool oneFolder = true;
            for (int i = 1; i < count; i++) oneFolder &= _wholeCheckpoints[i].Token == newest.Token;
            int older = _wholeCheckpoints.FindIndex(count, id => id.Token != newest.Token);
            if (oneFolder && older > 0)
            {
                (_wholeCheckpoints[count], _wholeCheckpoints[older]) = (_wholeCheckpoints[older], _wholeCheckpoints[count]);
                count++;
            }
        }
        _wholeCheckpoints.RemoveRange(count, _wholeCheckpoints.Count - count);
        var kept = new HashSet<Guid>();
        foreach (CheckpointId id in _wholeCheckpoints) kept.Add(id.Token);
        int purged = 0;
        foreach (Guid token in _checkpointManager.GetLogCheckpointTokens().Concat(_checkpointManager.GetIndexCheckpointTokens()).Distinct().ToList())
        {
            if (kept.Contains(token)) continue;
            _checkpointManager.Purge(token);   // deletes the token's log and index checkpoint folders
            purged++;
        }
        if (purged > 0) _logger.CheckpointsPurged(purged, onlyNewest);
    }

    private string CheckpointDirectory => Path.Combine(Path.GetFullPath(_options.DataDirectory), "checkpoints");

    /// <summary>The hybrid log's segments, <c>DATA/log/hlog.log.N</c>.</summary>
    private string LogDirectory => Path.Combine(Path.GetFullPath(_options.DataDirectory), "log");

    private void SetLastCheckpoint(DateTime utc) => Interlocked.Exchange(ref _lastCheckpointTicks, utc.Ticks);
}

/// <summary>
/// One recovery point: a checkpoint folder (FASTER's token) and the version in it, its full checkpoint's or one
/// of its increments'. <paramref name="Version"/> is null for a checkpoint written before versions were recorded.
/// </summary>
internal readonly record struct CheckpointId(Guid Token, long? Version)
{
    public override string ToString() => Version is long v ? $"{Token} version {v}" : Token.ToString();
}
