using System.Diagnostics;
using System.Numerics;
using FASTER.core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage;

/// <summary>
/// The parameter store of one node: every table's rows in one FASTER <c>FasterKV</c>, keyed by
/// (table id, uint64 key), valued by the row and its optimizer state (docs/durability.md).
/// </summary>
/// <remarks>
/// <para>Batch calls (<see cref="Push"/>, <see cref="Pull"/>…) are thread-safe: each rents a FASTER session for
/// the whole batch. Table changes serialize on a lock; checkpoints and compactions on a semaphore.</para>
/// <para>Split by concern: tables in ParamStore.Tables.cs, push/pull in ParamStore.Rows.cs, checkpoints in
/// ParamStore.Checkpoints.cs, compaction in ParamStore.Compaction.cs, recovery in ParamStore.Recovery.cs, the
/// write-ahead log in ParamStore.Durability.cs, vector clocks and workers in ParamStore.Versions.cs, the key scan
/// and exports in ParamStore.Scan.cs and ParamStore.Export.cs.</para>
/// </remarks>
public sealed partial class ParamStore : INodeStorage, Transfer.IRangeTransfer, IDisposable
{
    /// <summary>Log page, in bits: 2 MiB holds the largest row (dim 65,536 with adam: 768 KiB + 4 B); a record never spans pages.</summary>
    private const int PageSizeBits = 21;

    /// <summary>Log file (segment), in bits: 128 MiB, the unit in which the disk log is truncated behind a checkpoint.</summary>
    private const int SegmentSizeBits = 27;

    /// <summary>Smallest log memory, in bits: 8 MiB = 4 pages, so the mutable 90 % still spans 3 pages.</summary>
    private const int MinMemorySizeBits = 23;

    private readonly StoreOptions _options;
    private readonly ILogger _logger;
    private readonly IDevice _logDevice;
    private readonly DeviceLogCommitCheckpointManager _checkpointManager;

    /// <summary>What the checkpoint device wrote, so manifests need not read checkpoints back.</summary>
    private readonly WrittenChecksums _writtenChecksums;

    /// <summary>Files of checkpoints whose manifests took their checksums from <see cref="_writtenChecksums"/>; tests only.</summary>
    internal int ChecksumsFromWrites => _writtenChecksums.Vouched;
    private readonly FasterKV<RowKey, SpanByte> _store;
    private readonly SessionPool _sessions;
    private readonly RowLatches _latches = new();
    private int _disposed;

    private ParamStore(StoreOptions options, ILogger logger, IDevice logDevice, DeviceLogCommitCheckpointManager checkpointManager,
        WrittenChecksums writtenChecksums, FasterKV<RowKey, SpanByte> store)
    {
        _options = options;
        _logger = logger;
        _logDevice = logDevice;
        _checkpointManager = checkpointManager;
        _writtenChecksums = writtenChecksums;
        _store = store;
        _sessions = new SessionPool(store);
        _ring = options.Ring;
        _shape = new Versions.RangeShape(options.Ring.Count);
    }

    /// <summary>
    /// Opens the store in <see cref="StoreOptions.DataDirectory"/>: recovers the newest checkpoint that can be
    /// recovered (falling back to older ones), or starts empty when there is none.
    /// </summary>
    /// <param name="options">Where and how to keep the data.</param>
    /// <param name="logger">Receives start-up, checkpoint and compaction events.</param>
    /// <exception cref="InvalidDataException">
    /// No valid state can be built: every checkpoint is damaged and the write-ahead log no longer reaches back to
    /// its first record, or the log after the recovered checkpoint is missing or damaged. The message names the
    /// files.
    /// </exception>
    public static ParamStore Open(StoreOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.DataDirectory);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MemoryBytes, 1L << MinMemorySizeBits);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.CheckpointsToKeep, 1);
        logger ??= NullLogger.Instance;
        var clock = Stopwatch.StartNew();

        string root = Path.GetFullPath(options.DataDirectory);
        string logDirectory = Path.Combine(root, "log");
        string checkpointDirectory = Path.Combine(root, "checkpoints");
        string walDirectory = Path.Combine(root, "wal");
        if (!options.ReadOnly) Snapshots.RestoreStaging.RollForward(root, logger);
        Directory.CreateDirectory(checkpointDirectory);
        var writtenChecksums = new WrittenChecksums();
        var checkpointManager = new DeviceLogCommitCheckpointManager(
            new CheckpointDeviceFactory(writtenChecksums, options.CheckpointWriteCompletionDelay), new DefaultCheckpointNamingScheme(checkpointDirectory), removeOutdated: false);
        List<Guid> tokens = checkpointManager.GetLogCheckpointTokens().ToList();   // newest first
        var damage = new List<string>();
        if (tokens.Count == 0 && Directory.Exists(logDirectory))
            Directory.Delete(logDirectory, recursive: true);   // a log no checkpoint describes cannot be recovered
        Directory.CreateDirectory(logDirectory);
        IDevice logDevice = Devices.CreateLogDevice(Path.Combine(logDirectory, "hlog.log"), recoverDevice: true);

        FasterKV<RowKey, SpanByte>? store = null;
        CheckpointId? recovered = null;
        (long Cut, List<(string Path, long Length, uint Crc)> LogPrefixes)? vouched = null;
        foreach (CheckpointId candidate in Candidates(checkpointDirectory, tokens, logger, damage))
        {
            store = CreateKv(options, logDevice, checkpointManager);
            try
            {
                // FASTER must see only what this version holds (see IncrementFallBack), and must recover exactly it.
                vouched = IncrementFallBack.Confine(checkpointDirectory, candidate.Token, candidate.Version, root, options.ReadOnly);
                if (candidate.Version is long version && CheckpointManifest.Sizes(checkpointDirectory, candidate.Token).Delta > 0)
                    // Recover(token) would apply every increment in the delta log; recoverTo stops at the one the
                    // manifest vouched for. FASTER picks the newest checkpoint at or below it, which is this one:
                    // versions only grow, so newer folders are all above it.
                    store.Recover(numPagesToPreload: -1, undoNextVersion: true, recoverTo: version);
                else
                    store.Recover(candidate.Token);
                if (vouched is { Cut: long expectedCut } && RecoveredCut(store) is long cut && cut != expectedCut)
                    throw new InvalidDataException($"FASTER recovered a state whose cut is record {cut}, where checkpoint {candidate} holds records up to {expectedCut}: it is not that checkpoint's state.");
                recovered = candidate;
                break;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Whatever a torn or half-deleted checkpoint makes FASTER throw, the previous checkpoint may still be whole.
                logger.RecoveryFailed(candidate.Token, e);
                damage.Add($"checkpoint {candidate} could not be recovered: {e.Message}");
                store.Dispose();
                store = null;
            }
        }
        if (store is null)
        {
            if (options.ReadOnly)
            {
                logDevice.Dispose();
                checkpointManager.Dispose();
                throw new InvalidDataException($"{root} holds no checkpoint that can be recovered ({(damage.Count > 0 ? string.Join("; ", damage) : "none at all")}).");
            }
            if (damage.Count > 0 && !WalReachesFirstRecord(walDirectory))
            {
                logDevice.Dispose();
                checkpointManager.Dispose();
                throw new InvalidDataException(
                    $"No checkpoint in {checkpointDirectory} can be recovered ({string.Join("; ", damage)}), and the write-ahead log in {walDirectory} no longer reaches back to its first record, so the state cannot be rebuilt without them. Refusing to start rather than serve wrong or missing values; restore the named files, or move the data directory aside to start empty.");
            }
            if (tokens.Count > 0)
            {
                // Every checkpoint is unfinished or damaged, and the log holds the whole history: rebuild from it alone.
                logger.RebuildingFromLog(tokens.Count);
                logDevice.Dispose();
                Directory.Delete(logDirectory, recursive: true);
                Directory.CreateDirectory(logDirectory);
                logDevice = Devices.CreateLogDevice(Path.Combine(logDirectory, "hlog.log"), recoverDevice: true);
            }
            store = CreateKv(options, logDevice, checkpointManager);
        }

        var paramStore = new ParamStore(options, logger, logDevice, checkpointManager, writtenChecksums, store) { DamagedCheckpointsAtOpen = damage.Count };
        try
        {
            if (recovered is { } recoveredId)
            {
                paramStore.LoadRecoveredState();
                paramStore._wholeCheckpoints.Add(recoveredId);
                if (vouched is { } checkedPrefixes) paramStore.LogChecksums.Seed(checkedPrefixes.LogPrefixes);
                paramStore._checkpointCuts[recoveredId] = paramStore._recoveredCut;
                paramStore.SetLastCheckpoint(Directory.GetLastWriteTimeUtc(Path.Combine(checkpointDirectory, "cpr-checkpoints", recoveredId.Token.ToString())));
            }
            if (options.ReadOnly) paramStore._lsnFloor = paramStore._recoveredCut;
            else paramStore.OpenLog(walDirectory);
            paramStore.RecountRangeRows();
        }
        catch
        {
            paramStore.Dispose();
            throw;
        }
        if (!options.ReadOnly) Snapshots.RestoreStaging.DropOld(root);
        long rows = 0;
        foreach (TableHandle table in paramStore._catalog.Sorted) rows += table.Rows;
        logger.StoreOpened(root, paramStore._catalog.Sorted.Count, rows, (1L << MemorySizeBits(options)) >> 20, recovered?.ToString() ?? "no checkpoint (a new store)", clock.ElapsedMilliseconds);
        return paramStore;
    }

    /// <summary>
    /// The checkpoints worth handing to FASTER, newest first, checked lazily so an open reads only as far back as
    /// it must: per folder its increments, newest first, then its base, each whose manifest checks out. One
    /// without a manifest never completed and is skipped; one that fails its manifest is damaged, skipped and
    /// reported in <paramref name="damage"/>. A store written before manifests existed has none at all: its
    /// checkpoints are all candidates, checked by FASTER alone.
    /// </summary>
    private static IEnumerable<CheckpointId> Candidates(string checkpointDirectory, List<Guid> tokens, ILogger logger, List<string> damage)
    {
        bool manifests = false;
        foreach (Guid token in tokens) manifests |= CheckpointManifest.Exists(checkpointDirectory, token);
        var checkedFiles = new HashSet<(string, long, uint)>();   // a base shared by several versions is read once
        foreach (Guid token in tokens)
        {
            if (!manifests)
            {
                yield return new CheckpointId(token, null);
                continue;
            }
            List<(long? Version, string Path)> versions = CheckpointManifest.Manifests(checkpointDirectory, token);
            if (versions.Count == 0) logger.CheckpointUnfinished(token);
            foreach ((long? version, string path) in versions)
            {
                if (CheckpointManifest.Check(checkpointDirectory, token, path, out string? problem, checkedFiles) == ManifestCheck.Valid)
                {
                    yield return new CheckpointId(token, version);
                    continue;
                }
                logger.CheckpointDamaged(token, problem ?? "its manifest vanished");
                damage.Add($"checkpoint {new CheckpointId(token, version)}: {problem}");
            }
        }
    }

    /// <summary>The cut record of a just-recovered store (null when it has none: a checkpoint of an empty store).</summary>
    private static long? RecoveredCut(FasterKV<RowKey, SpanByte> store)
    {
        using var reader = new SystemRecordReader(store);
        return reader.Read([RowKey.WalCutKey])[0] is { } bytes && CutRecord.TryRead(bytes, out long cut, out _) ? cut : null;
    }

    /// <summary>Whether the write-ahead log still starts at record 1, so it alone can rebuild the whole state.</summary>
    private static bool WalReachesFirstRecord(string walDirectory)
    {
        List<(long FirstLsn, string Path)> segments = WalFormat.ListSegments(walDirectory);
        return segments.Count > 0 && segments[0].FirstLsn == 1;
    }

    /// <summary>Log memory in bits: <see cref="StoreOptions.MemoryBytes"/> rounded down to a power of two.</summary>
    private static int MemorySizeBits(StoreOptions options) => Math.Max(MinMemorySizeBits, BitOperations.Log2((ulong)options.MemoryBytes));

    private static FasterKV<RowKey, SpanByte> CreateKv(StoreOptions options, IDevice logDevice, ICheckpointManager checkpointManager)
    {
        int memoryBits = MemorySizeBits(options);
        // Hash index: one 64-byte bucket (7 entries) per KiB of log memory, i.e. 1/16 of the budget on top of it.
        // A KiB holds ~3.5 rows of dim 64 (288 B each), so buckets stay about half full while rows fit in memory;
        // beyond that FASTER chains overflow buckets. 1 GiB → 1 Mi buckets (64 MiB); never below 16 Ki buckets.
        long indexBuckets = 1L << Math.Max(RowLatches.StripeBits, memoryBits - 10);
        return new FasterKV<RowKey, SpanByte>(
            indexBuckets,
            new LogSettings
            {
                LogDevice = logDevice,
                PageSizeBits = PageSizeBits,
                MemorySizeBits = memoryBits,
                SegmentSizeBits = SegmentSizeBits,
                MutableFraction = 0.9,   // the newest 90 % of memory is updated in place; older pages are copied to the tail on update
            },
            new CheckpointSettings { CheckpointManager = checkpointManager },
            comparer: RowKeyComparer.Instance,
            // LockTable: FASTER latches the key's hash bucket around every in-place update (exclusive) and read
            // (shared), so a pull never sees a torn row. Writers also hold a RowLatches stripe: FASTER alone could
            // create a new row twice. Index sizing above must keep at least 2^RowLatches.StripeBits buckets.
            concurrencyControlMode: ConcurrencyControlMode.LockTable);
    }

    /// <summary>
    /// Closes FASTER and the log files. Does not checkpoint: the host calls <see cref="CheckpointAsync"/> first
    /// on a clean shutdown. No call may be in progress.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        EndClockWaits();
        _walTruncation.Wait();   // never faults: TruncateLog logs what fails
        _wal?.Dispose();   // writes what was appended; nothing acknowledged is waiting on it, since callers are gone
        _sessions.Dispose();
        _store.Dispose();
        CloseLogDevice();
        _checkpointManager.Dispose();
        _maintenance.Dispose();
        _pushGate.Dispose();
    }

    /// <summary>
    /// Ends every waiting pull with <see cref="ClockWaitStatus.Closing"/>: the host calls it when shutdown starts,
    /// so waiting pulls answer at once instead of holding the shutdown until their timeouts.
    /// </summary>
    public void EndClockWaits()
    {
        foreach (TableHandle table in _catalog.Sorted) table._clocks.EndAll(ClockWaitStatus.Closing);
    }

    /// <summary>
    /// Closes the log files, waiting at most 5 s. FASTER 2.6.5's <c>ManagedLocalStorageDevice.Dispose</c> waits on a
    /// semaphore for every file handle to come back, and when a read finishes during that wait the wake-up can be
    /// lost (<c>AsyncPool.Return</c> releases only when the count looks low): seen once in ~15 test runs, with every
    /// handle already returned and closed and the dispose blocked forever. A shutdown must not hang on it, so the
    /// dispose runs on a pool thread and is abandoned (with a warning) after 5 s.
    /// </summary>
    private void CloseLogDevice()
    {
        Task closing = Task.Run(_logDevice.Dispose);
        if (!closing.Wait(TimeSpan.FromSeconds(5))) _logger.LogDeviceCloseTimedOut();
    }
}
