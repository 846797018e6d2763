using System.Diagnostics;
using FASTER.core;
using ParamDb.Storage.Durability;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>Rebuilding the catalog, the row counts, the workers and their clocks from a recovered checkpoint.</summary>
public sealed partial class ParamStore
{
    /// <summary>How the last open loaded the recovered state, for the log and for tests.</summary>
    internal RecoveredStateSource RecoveredStateSource { get; private set; }

    /// <summary>Checkpoint versions the last open found damaged or could not recover (tests check there were none).</summary>
    internal int DamagedCheckpointsAtOpen { get; private set; }

    /// <summary>System-record reads at open that went to the on-disk log (tests check the pending path ran).</summary>
    internal int RecoveryPendingReads { get; private set; }

    /// <summary>
    /// Tests only: overwrites a system record without logging it, to build states a checkpoint taken before the
    /// push gate could hold (a catalog record that does not name a table whose rows are in the checkpoint).
    /// </summary>
    internal void UpsertSystemRecordForTests(RowKey key, ReadOnlySpan<byte> bytes) => UpsertRecord(key, bytes);

    /// <summary>
    /// Loads what the recovered checkpoint holds besides rows: the catalog, the cut, the row counts, the workers
    /// and their vector clocks. A checkpoint whose cut record carries the counts (<see cref="CutRecord"/>) is read
    /// with a few point reads; an older one by one pass over the whole log.
    /// </summary>
    /// <remarks>
    /// Why counts taken at the cut are exact: the cut record is written with the push gate held exclusively, so no
    /// push, import or table change is half applied, and FASTER's version moves on before the gate opens, so
    /// everything counted is in the checkpoint and nothing after it is. The full pass cost 1.2 s of an 11.4 s
    /// restart with 1 GiB of rows; the point reads and the parsing took ~40 ms in the same runs.
    /// </remarks>
    private void LoadRecoveredState()
    {
        var clock = Stopwatch.StartNew();
        if (!TryLoadFromCutRecord()) LoadByScanning();
        _logger.RecoveredStateLoaded(RecoveredStateSource, _catalog.Sorted.Count, _registry.All.Length, clock.ElapsedMilliseconds);
    }

    /// <summary>Point reads of the system records; false when the cut record has no counts (the caller scans).</summary>
    private bool TryLoadFromCutRecord()
    {
        using var reader = new SystemRecordReader(_store);
        Span<RowKey> keys = [RowKey.CatalogKey, RowKey.WorkersKey, RowKey.WalCutKey, RowKey.RangesKey];
        byte[]?[] records = reader.Read(keys);
        RecoveryPendingReads = reader.PendingReads;
        if (records[2] is not { } cutBytes || !CutRecord.TryRead(cutBytes, out long cut, out CutContentsRecord? contents) || contents is null)
            return false;
        RecoverRanges(records[3]);   // before the catalog sizes the tables' clocks and the clock records are placed

        Catalog recovered = records[0] is { } catalogBytes ? Catalog.Deserialize(catalogBytes, _shape) : Catalog.Empty;
        // A table of the catalog record that the cut record does not list was created while the checkpoint waited
        // for the push gate: its catalog record made it in, but no push to it could, so it holds no rows.
        foreach (TableHandle table in recovered.Sorted)
            table.SetRows(contents.RowsByTable.GetValueOrDefault(table.Id));
        _catalog = recovered.WithNextId(contents.NextId);
        _recoveredCut = cut;

        long now = NowTicks;
        if (records[1] is { } registryBytes) _registry = WorkerRegistry.Deserialize(registryBytes, now);
        Worker[] workers = _registry.All;
        IReadOnlyList<TableHandle> tables = _catalog.Sorted;
        int clocks = 0;
        if (workers.Length > 0 && tables.Count > 0)
        {
            var clockKeys = new RowKey[tables.Count * workers.Length];
            for (int t = 0; t < tables.Count; t++)
                for (int w = 0; w < workers.Length; w++)
                    clockKeys[t * workers.Length + w] = RowKey.ClockKey(tables[t].Id, workers[w].Id);
            byte[]?[] clockRecords = reader.Read(clockKeys);
            RecoveryPendingReads = reader.PendingReads;
            for (int i = 0; i < clockRecords.Length; i++)
            {
                if (clockRecords[i] is not { } record) continue;   // the worker never pushed to this table
                clocks += LoadClock(tables[i / workers.Length], workers[i % workers.Length].Id, record);
            }
        }
        if (workers.Length > 0 || clocks > 0) _logger.ClocksRecovered(workers.Length, clocks);
        RecoveredStateSource = RecoveredStateSource.CutRecord;
        return true;
    }

    /// <summary>
    /// One pass over the live records of the recovered log: the catalog record gives the tables, the others are
    /// counted per table id. For checkpoints whose cut record has no counts (written before they existed).
    /// </summary>
    /// <remarks>
    /// It reads the log once, sequentially: the log is at most ~2× the live data (see <see cref="CompactLog"/>),
    /// e.g. ~1.2 s for 1 GiB of rows on the development VM. Such a checkpoint may also predate the push gate, when
    /// CPR ordered each session but not sessions against each other: rows of a table whose create missed the
    /// checkpoint can be in it, so the next table id is raised past every id rows use.
    /// </remarks>
    private void LoadByScanning()
    {
        var scan = new RecoveryScan(new Dictionary<uint, long>());
        RowSession session = _sessions.Rent();
        try
        {
            session.Iterate(ref scan);
        }
        finally
        {
            _sessions.Return(session);
        }

        RecoverRanges(scan.RangesRecord);
        Catalog recovered = scan.CatalogRecord is { } bytes ? Catalog.Deserialize(bytes, _shape) : Catalog.Empty;
        // Never hand out an id that rows already use (see the remarks).
        uint maxSeen = 0;
        long orphans = 0;
        foreach ((uint id, long rows) in scan.RowsByTable)
        {
            maxSeen = Math.Max(maxSeen, id);
            if (recovered.TryGet(id, out TableHandle? table)) table!.SetRows(rows);
            else orphans += rows;
        }
        _catalog = recovered.WithNextId(maxSeen + 1);
        _recoveredCut = scan.Cut;
        if (orphans > 0) _logger.OrphanRows(orphans);

        // Workers start fresh leases now; their clocks come back only for live tables and registered workers.
        long now = NowTicks;
        if (scan.RegistryRecord is { } registryBytes) _registry = WorkerRegistry.Deserialize(registryBytes, now);
        int clocks = 0;
        foreach (((uint table, uint worker), byte[] record) in scan.Clocks)
        {
            if (!_catalog.TryGet(table, out TableHandle? handle) || !_registry.TryGet(worker, out _)) continue;
            clocks += LoadClock(handle!, worker, record);
        }
        if (_registry.All.Length > 0 || clocks > 0) _logger.ClocksRecovered(_registry.All.Length, clocks);
        RecoveredStateSource = RecoveredStateSource.Scan;
    }

    /// <summary>Sets a worker's recovered clocks on a table; returns 1 to count the record.</summary>
    private int LoadClock(TableHandle table, uint worker, byte[] record)
    {
        WorkerClocks entry = table._clocks.For(worker);
        ClockRecord.Read(record, _ring, entry.Ranges);
        entry.Recompute();
        return 1;
    }

    /// <summary>Push iterator over the distinct live records (FASTER skips older versions and tombstones).</summary>
    private struct RecoveryScan(Dictionary<uint, long> rowsByTable) : IScanIteratorFunctions<RowKey, SpanByte>
    {
        public Dictionary<uint, long> RowsByTable { get; } = rowsByTable;

        public Dictionary<(uint Table, uint Worker), byte[]> Clocks { get; } = [];

        public byte[]? CatalogRecord { get; private set; }

        public byte[]? RegistryRecord { get; private set; }

        public byte[]? RangesRecord { get; private set; }

        public long Cut { get; private set; }

        public readonly bool OnStart(long beginAddress, long endAddress) => true;

        public bool SingleReader(ref RowKey key, ref SpanByte value, RecordMetadata recordMetadata, long numberOfRecords)
        {
            if (key.Kind == RowKind.Clock) Clocks[(key.Table, (uint)key.Key)] = value.ToByteArray();
            else if (key.Table != 0) RowsByTable[key.Table] = RowsByTable.GetValueOrDefault(key.Table) + 1;
            else if (key.Key == RowKey.CatalogKey.Key) CatalogRecord = value.ToByteArray();
            else if (key.Key == RowKey.WorkersKey.Key) RegistryRecord = value.ToByteArray();
            else if (key.Key == RowKey.RangesKey.Key) RangesRecord = value.ToByteArray();
            else if (key.Key == RowKey.WalCutKey.Key && CutRecord.TryRead(value.AsReadOnlySpan(), out long cut, out _)) Cut = cut;
            return true;
        }

        public bool ConcurrentReader(ref RowKey key, ref SpanByte value, RecordMetadata recordMetadata, long numberOfRecords) =>
            SingleReader(ref key, ref value, recordMetadata, numberOfRecords);

        public readonly void OnStop(bool completed, long numberOfRecords)
        {
        }

        public readonly void OnException(Exception exception, long numberOfRecords)
        {
        }
    }

    /// <summary>
    /// Point reads of whole system records (catalog, registry, cut, clocks) as byte arrays, through a session of
    /// its own: the row functions copy <c>dim</c> floats into a pull's buffer and cannot return a record. Used by
    /// one thread, for a handful of reads at open, so the virtual calls of <see cref="FunctionsBase{Key, Value, Input, Output, Context}"/> cost nothing that matters.
    /// </summary>
    private sealed class SystemRecordReader(FasterKV<RowKey, SpanByte> store) : IDisposable
    {
        private readonly ClientSession<RowKey, SpanByte, Empty, byte[]?, int, Functions> _session =
            store.For(new Functions()).NewSession<Functions>();

        /// <summary>The record of each key, or null where there is none. Records on disk go pending and are completed here.</summary>
        /// <exception cref="IOException">A read of the on-disk log failed.</exception>
        public byte[]?[] Read(ReadOnlySpan<RowKey> keys)
        {
            var records = new byte[]?[keys.Length];
            Empty input = default;
            bool pending = false;
            for (int i = 0; i < keys.Length; i++)
            {
                RowKey key = keys[i];
                byte[]? output = null;
                Status status = _session.Read(ref key, ref input, ref output, i);
                if (status.IsPending)
                {
                    pending = true;
                    PendingReads++;
                }
                else if (status.IsFaulted) throw new IOException($"Reading system record {key} of the recovered store failed.");
                else if (status.Found) records[i] = output;
            }
            if (!pending) return records;
            _session.CompletePendingWithOutputs(out CompletedOutputIterator<RowKey, SpanByte, Empty, byte[]?, int> completed, wait: true);
            using (completed)
            {
                while (completed.Next())
                {
                    ref CompletedOutput<RowKey, SpanByte, Empty, byte[]?, int> done = ref completed.Current;
                    if (done.Status.IsFaulted) throw new IOException($"Reading system record {done.Key} from the on-disk log failed.");
                    if (done.Status.Found) records[done.Context] = done.Output;
                }
            }
            return records;
        }

        /// <summary>Reads so far that went pending (to the on-disk log).</summary>
        public int PendingReads { get; private set; }

        public void Dispose() => _session.Dispose();

        /// <summary>Copies a found record out; everything else is FunctionsBase's (reads only, nothing is written).</summary>
        public sealed class Functions : FunctionsBase<RowKey, SpanByte, Empty, byte[]?, int>
        {
            /// <inheritdoc/>
            public override bool SingleReader(ref RowKey key, ref Empty input, ref SpanByte value, ref byte[]? dst, ref ReadInfo readInfo)
            {
                dst = value.ToByteArray();
                return true;
            }

            /// <inheritdoc/>
            public override bool ConcurrentReader(ref RowKey key, ref Empty input, ref SpanByte value, ref byte[]? dst, ref ReadInfo readInfo)
            {
                dst = value.ToByteArray();
                return true;
            }
        }
    }
}

/// <summary>Where an open found the recovered checkpoint's catalog, counts and clocks.</summary>
internal enum RecoveredStateSource
{
    /// <summary>No checkpoint was recovered.</summary>
    None,
    /// <summary>Point reads, with the row counts from the cut record.</summary>
    CutRecord,
    /// <summary>A pass over the whole log: the cut record predates the counts.</summary>
    Scan,
}
