using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using ParamDb.Protocol;
using ParamDb.Storage.Durability;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>
/// The write-ahead log (docs/durability.md): every write is appended before it is applied, inside the same push-gate
/// section, and acknowledged once its record is durable. A checkpoint records the newest LSN it contains (the
/// cut); recovery replays only what follows the cut, so each record lands exactly once.
/// </summary>
public sealed partial class ParamStore
{
    /// <summary>The write-ahead log; null in <see cref="DurabilityMode.Checkpoint"/> mode and while the log is replayed.</summary>
    private WriteAheadLog? _wal;

    /// <summary>The newest LSN the state holds when no log is open (checkpoint mode, or during replay).</summary>
    private long _lsnFloor;

    /// <summary>The cut found in the recovered checkpoint (0 without one).</summary>
    private long _recoveredCut;

    /// <summary>The cut of each checkpoint this process knows whole, to truncate the log behind the oldest kept.</summary>
    private readonly Dictionary<CheckpointId, long> _checkpointCuts = [];

    /// <summary>Log bytes appended when the newest checkpoint cut (see <see cref="WalBytesSinceCheckpoint"/>).</summary>
    private long _walBytesAtCut;

    /// <summary>
    /// What the last open dropped from a damaged write-ahead log and where the damaged bytes went, with
    /// <see cref="StoreOptions.AcceptWalLoss"/>; null when it dropped nothing.
    /// </summary>
    public string? AcceptedLoss { get; private set; }

    /// <summary>The durability mode the store was opened with.</summary>
    public DurabilityMode Durability => _options.Durability;

    /// <summary>
    /// Write-ahead log bytes appended since the newest checkpoint cut: what a recovery would replay. The host
    /// checkpoints when it grows past a bound, so recovery time stays bounded under a heavy push load.
    /// </summary>
    public long WalBytesSinceCheckpoint => _wal is null ? 0 : _wal.AppendedBytes - Interlocked.Read(ref _walBytesAtCut);

    /// <summary>The LSN of the newest write the state holds.</summary>
    private long CurrentLsn => _wal?.LastLsn ?? _lsnFloor;

    /// <summary>
    /// Appends a push to the log. The caller holds the push gate shared and applies the push after this returns,
    /// so a checkpoint's cut falls between whole pushes.
    /// </summary>
    /// <returns>
    /// The task to await before acknowledging; null when nothing is logged. Already faulted when the log failed
    /// earlier and refused the record: the caller then applies nothing, and the fault answers the request.
    /// </returns>
    private Task? LogPush(TableHandle table, BatchKeys keys, ReadOnlySpan<float> values, WorkerStamp stamp)
    {
        if (_wal is null) return null;
        Span<byte> header = stackalloc byte[WalRecord.PushHeaderSize];
        WalRecord.WritePushHeader(header, table.Id, keys.IsRange, keys.First, keys.Count, stamp);
        return AppendRows(_wal, header, keys.Explicit, values);
    }

    /// <summary>Appends an import's batch of overwritten rows, like <see cref="LogPush"/> (same gate, same contract).</summary>
    private Task? LogSetRows(TableHandle table, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values)
    {
        if (_wal is null) return null;
        Span<byte> header = stackalloc byte[WalRecord.PushHeaderSize];
        WalRecord.WriteSetRowsHeader(header, table.Id, keys.Length);
        return AppendRows(_wal, header, keys, values);
    }

    /// <summary>Appends a row record's three parts; a log that refuses it answers with an already faulted task.</summary>
    private static Task AppendRows(WriteAheadLog log, ReadOnlySpan<byte> header, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values)
    {
        try
        {
            return log.Append(header, MemoryMarshal.AsBytes(keys), MemoryMarshal.AsBytes(values)).Durable;
        }
        catch (IOException e)
        {
            return Task.FromException(e);
        }
    }

    /// <summary>Appends a catalog or registry record; the caller holds the push gate shared.</summary>
    private Task? LogSystemRecord(WalRecordKind kind, ReadOnlySpan<byte> value)
    {
        if (_wal is null) return null;
        Span<byte> header = stackalloc byte[WalRecord.SystemHeaderSize];
        WalRecord.WriteSystemHeader(header, kind);
        return _wal.Append(header, value, default).Durable;
    }

    /// <summary>
    /// For a write that changed nothing because an earlier one already did (a retried push): durable once that
    /// earlier write is, which may still be in the batch being written.
    /// </summary>
    private Task? DurableSoFar() => _wal?.WhenDurable(_wal.LastLsn);

    /// <summary>Waits for a system record's durability outside every lock (table and worker calls are synchronous).</summary>
    private static void WaitDurable(Task? durable) => durable?.GetAwaiter().GetResult();

    /// <summary>
    /// Tests only: checkpoints write the cut record as builds before the row counts did (the LSN alone, 8 bytes),
    /// so a test can open a store whose checkpoint has no counts.
    /// </summary>
    internal bool Format0CutRecordForTests { get; set; }

    /// <summary>
    /// Writes the cut record (<see cref="CutRecord"/>): the newest LSN this checkpoint contains, the catalog's next
    /// table id and every live table's rows. Called with the push gate held exclusively, just before FASTER moves
    /// to the next version, so the record lands in the checkpoint and its counts are exactly the checkpoint's: a
    /// restart reads them instead of counting every record of the log.
    /// </summary>
    private long WriteCutRecord()
    {
        long cut = CurrentLsn;
        Catalog current = _catalog;
        IReadOnlyList<TableHandle> tables = current.Sorted;
        // Once per checkpoint, a few bytes per table: the allocation is not worth pooling.
        var counts = new (uint Id, long Rows)[tables.Count];
        for (int i = 0; i < counts.Length; i++) counts[i] = (tables[i].Id, tables[i].Rows);
        int size = Format0CutRecordForTests ? sizeof(long) : CutRecord.SizeOf(counts.Length);
        byte[]? rented = size > 1024 ? ArrayPool<byte>.Shared.Rent(size) : null;
        Span<byte> bytes = rented is null ? stackalloc byte[size] : rented.AsSpan(0, size);
        try
        {
            if (Format0CutRecordForTests) BinaryPrimitives.WriteInt64LittleEndian(bytes, cut);
            else CutRecord.Write(bytes, cut, current.NextId, counts);
            UpsertRecord(RowKey.WalCutKey, bytes);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
        if (_wal is not null) Interlocked.Exchange(ref _walBytesAtCut, _wal.AppendedBytes);
        return cut;
    }

    /// <summary>
    /// Deletes log segments every kept checkpoint contains, on a pool thread: the checkpoint is complete without
    /// it, and deleting ~70 segments of 64 MiB took 1.0–1.3 s of a full checkpoint under push load. The oldest
    /// kept checkpoint bounds it, so a fall back to it (when a newer one turns out damaged) still finds the
    /// records after its cut. The caller holds <see cref="_maintenance"/>; the next checkpoint and
    /// <see cref="Dispose"/> wait for the deletes (<see cref="_walTruncation"/>).
    /// </summary>
    private void TruncateLog()
    {
        if (_wal is not { } log) return;
        long keepFrom = long.MaxValue;
        foreach (CheckpointId id in _wholeCheckpoints)
        {
            if (!_checkpointCuts.TryGetValue(id, out long cut)) return;   // a kept checkpoint of unknown cut: keep everything
            keepFrom = Math.Min(keepFrom, cut + 1);
        }
        if (keepFrom == long.MaxValue) return;
        foreach (CheckpointId id in _checkpointCuts.Keys.ToList())
            if (!_wholeCheckpoints.Contains(id)) _checkpointCuts.Remove(id);
        _walTruncation = Task.Run(() =>
        {
            try
            {
                int deleted = log.TruncateBefore(keepFrom);
                if (deleted > 0) _logger.WalTruncated(deleted, keepFrom);
            }
            catch (Exception e)
            {
                // The segments stay; the next checkpoint deletes them, and replay skips those before its cut.
                _logger.WalTruncationFailed(keepFrom, e);
            }
        });
    }

    /// <summary>The deletes <see cref="TruncateLog"/> started last; complete when none runs.</summary>
    private Task _walTruncation = Task.CompletedTask;

    /// <summary>
    /// Brings the recovered state up to date from the log, then opens the log for appends (or, in
    /// <see cref="DurabilityMode.Checkpoint"/> mode, folds what was replayed into a checkpoint and removes the log).
    /// </summary>
    private void OpenLog(string directory)
    {
        var clock = Stopwatch.StartNew();
        long replayed = ReplayLog(directory, _recoveredCut);
        if (replayed > 0) _logger.WalReplayed(replayed, _recoveredCut, clock.ElapsedMilliseconds);
        if (_options.Durability != DurabilityMode.Checkpoint)
        {
            _wal = WriteAheadLog.Open(directory, _options.WalSegmentBytes, _options.Durability == DurabilityMode.Fsync, lastLsnAtLeast: _lsnFloor);
            return;
        }
        if (WalFormat.ListSegments(directory).Count == 0) return;
        if (replayed > 0)
        {
            CheckpointResult folded = CheckpointAsync().GetAwaiter().GetResult();
            _logger.WalFoldedIntoCheckpoint(_options.Durability, folded.Token);
        }
        Directory.Delete(directory, recursive: true);
    }

    /// <summary>
    /// Replays the log records after <paramref name="cut"/> through the same code paths as live writes, with the
    /// log closed so nothing is appended twice.
    /// </summary>
    /// <returns>Records replayed.</returns>
    /// <exception cref="InvalidDataException">Records after the cut are missing or damaged: the state cannot be rebuilt.</exception>
    private long ReplayLog(string directory, long cut)
    {
        long expected = cut + 1;
        var clock = Stopwatch.StartNew();
        WalScan scan;
        try
        {
            scan = WalReader.Replay(directory, cut + 1, (lsn, payload) =>
            {
                if (lsn != expected)
                    throw new WalCorruptException($"The write-ahead log in {directory} starts at record {lsn}, but the checkpoint holds records only up to {expected - 1}: records {expected}…{lsn - 1} are missing.");
                ApplyLogged(lsn, payload);
                expected = lsn + 1;
            });
        }
        catch (WalCorruptException e) when (e.Damage is { } damage && _options.AcceptWalLoss)
        {
            // The operator accepted the loss (paramdb recover --accept-loss): what was read before the damage is
            // applied, the rest is set aside, and the log continues from the damage.
            string aside = WalSalvage.SetAside(directory, damage, Path.GetFullPath(_options.DataDirectory));
            _logger.WalLossAccepted(damage.Describe(), aside);
            AcceptedLoss = $"{damage.Describe()}; those records were dropped, and the damaged bytes moved to {aside}.";
            _lsnFloor = Math.Max(cut, damage.Lsn - 1);
            return expected - cut - 1;
        }
        catch (WalCorruptException e)
        {
            throw new InvalidDataException(
                $"{e.Message} Refusing to start on a state that would lack acknowledged writes: restore the damaged file, or run 'paramdb recover --accept-loss --data {Path.GetFullPath(_options.DataDirectory)}' to start from the records before the damage (the rest is moved to {WalSalvage.DamagedFolder}/).", e);
        }
        _lsnFloor = Math.Max(cut, scan.LastLsn);
        if (scan.TornSegment is { } torn && new FileInfo(torn).Length is long length && length > scan.TornAt)
            // The shape a crash during a write leaves: the record being written, with nothing intact after it. It
            // was not acknowledged if the crash tore it; if the bytes were damaged later, this line is the trace.
            _logger.WalTornTail(torn, scan.TornAt, length - scan.TornAt, scan.LastLsn);
        if (scan.Visited > 0)
            _logger.WalReplayRead(scan.BytesRead >> 20, scan.Segments, (long)scan.ReadWait.TotalMilliseconds, clock.ElapsedMilliseconds);
        return scan.Visited;
    }

    private void ApplyLogged(long lsn, ReadOnlySpan<byte> payload)
    {
        switch (WalRecord.KindOf(payload))
        {
            case WalRecordKind.Push:
            case WalRecordKind.SetRows:
                if (!WalRecord.TryReadPushTable(payload, out uint tableId))
                    throw new WalCorruptException($"Write-ahead log record {lsn} is a push or set-rows record too short for its header.");
                if (!_catalog.TryGet(tableId, out TableHandle? table)) return;   // its table was deleted later in the log
                if (!WalRecord.TryReadPush(payload, table!.Dim, out WalPush push))
                    throw new WalCorruptException($"Write-ahead log record {lsn} is a push or set-rows record whose lengths do not match table '{table.Name}' (dim {table.Dim}).");
                if (WalRecord.KindOf(payload) == WalRecordKind.SetRows)
                {
                    ApplySetRows(table, push.Keys, push.Values);
                    return;
                }
                BatchKeys keys = push.IsRange ? new BatchKeys(push.First, push.Count) : new BatchKeys(push.Keys);
                ApplyPush(table, keys, push.Values, push.Stamp);
                return;
            case WalRecordKind.Catalog:
                Catalog logged = Catalog.Deserialize(payload[WalRecord.SystemHeaderSize..], _shape);
                _catalog = _catalog.Adopt(logged);
                UpsertRecord(RowKey.CatalogKey, payload[WalRecord.SystemHeaderSize..]);
                return;
            case WalRecordKind.Registry:
                WorkerRegistry next = WorkerRegistry.Deserialize(payload[WalRecord.SystemHeaderSize..], NowTicks);
                foreach (Worker gone in _registry.All)
                {
                    if (next.TryGet(gone.Id, out _)) continue;
                    foreach (TableHandle t in _catalog.Sorted) t._clocks.Forget(gone.Id);
                }
                _registry = next;
                UpsertRecord(RowKey.WorkersKey, payload[WalRecord.SystemHeaderSize..]);
                return;
            case WalRecordKind.Records:
                ReplayRecords(lsn, payload[WalRecord.SystemHeaderSize..]);
                return;
            case WalRecordKind.DropRange:
                ReplayDropRange(lsn, payload[WalRecord.SystemHeaderSize..]);
                return;
            case WalRecordKind.Ranges:
                if (!RangesRecord.TryRead(payload[WalRecord.SystemHeaderSize..], out Ring? ranges, out RangeShape? shape))
                    throw new WalCorruptException($"Write-ahead log record {lsn} is a ranges record that does not parse.");
                ApplySetRanges(ranges!, shape!);
                return;
            default:
                throw new WalCorruptException($"Write-ahead log record {lsn} has unknown kind {payload[0]}.");
        }
    }
}
