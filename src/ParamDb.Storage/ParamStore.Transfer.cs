using FASTER.core;
using ParamDb.Protocol;
using ParamDb.Storage.Durability;
using ParamDb.Storage.Transfer;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>
/// Whole-record transfer (docs/replication.md): a range's rows exactly as stored (values and optimizer state) and its
/// vector clock, read in batches on one node and written on another; and dropping a range. Replication, catch-up
/// and migration all move ranges this way.
/// </summary>
public sealed partial class ParamStore
{
    /// <summary>Bytes of a record batch a copy hands out at most: 4 MiB, a W-dense push's size.</summary>
    public const int TransferBatchBytes = 4 << 20;

    /// <summary>
    /// Starts a copy of the range of <paramref name="table"/> that ends at ring token <paramref name="token"/>: its
    /// vector clock is read now, and the end of the log fixed after it (<see cref="RangeCopy"/> says what the copy
    /// holds).
    /// </summary>
    /// <exception cref="ArgumentException">The token is not one of this store's ranges.</exception>
    public RangeCopy CopyRange(TableHandle table, ulong token, int maxBatchBytes = TransferBatchBytes) =>
        CopyRanges(table, [token], maxBatchBytes);

    /// <summary>
    /// Like <see cref="CopyRange"/> for several ranges at once, in one pass over the log: a node catching up on the
    /// ranges it backs up reads the log once, not once per range (64 passes took 4.5 s for 56 MB, docs/benchmarks.md).
    /// Batches of different ranges interleave; each range's last batch carries its clock.
    /// </summary>
    /// <exception cref="ArgumentException">A token is not one of this store's ranges, or none is given.</exception>
    public RangeCopy CopyRanges(TableHandle table, IReadOnlyCollection<ulong> tokens, int maxBatchBytes = TransferBatchBytes)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(tokens);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (tokens.Count == 0) throw new ArgumentException("Name at least one range to copy.", nameof(tokens));
        Ring ring = Ranges;
        int[] ranges = [.. tokens.Select(t => RangeIndex(ring, t, nameof(tokens))).Distinct().Order()];
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchBytes, RecordBatch.HeaderSize + 8 + table._layout.PayloadBytes);
        // Clocks first, then the end: a push the clock counts wrote its rows before it advanced the clock, so they
        // lie below the end (or were updated in place, where the copy reads them as they are).
        (uint, ulong)[][] clocks = ReadRangeClocks(table, ring, ranges);
        return new RangeCopy(this, table, ring, ranges, clocks, _store.Log.BeginAddress, _store.Log.TailAddress, maxBatchBytes);
    }

    /// <summary>
    /// The clocks of <paramref name="ranges"/> (indexes of <paramref name="ring"/>), each worker's read under its lock:
    /// for each range, the (worker, clock) pairs above 0, workers ascending, as a record batch carries them.
    /// </summary>
    private (uint Worker, ulong Clock)[][] ReadRangeClocks(TableHandle table, Ring ring, int[] ranges)
    {
        var clocks = new List<(uint, ulong)>[ranges.Length];
        for (int r = 0; r < ranges.Length; r++) clocks[r] = [];
        foreach (uint worker in WorkerIds())
        {
            WorkerClocks entry = table._clocks.For(worker);
            lock (entry)
            {
                CheckRangesUnchanged(ring, table);
                for (int r = 0; r < ranges.Length; r++)
                    if (entry.Ranges[ranges[r]] > 0) clocks[r].Add((worker, entry.Ranges[ranges[r]]));
            }
        }
        return Array.ConvertAll(clocks, c => c.ToArray());
    }

    /// <summary>
    /// Reads the records of <paramref name="table"/> in the ranges <paramref name="wanted"/> marks (by index of
    /// <paramref name="ring"/>) from log address <paramref name="next"/> up to <paramref name="end"/>, in log order,
    /// at most <paramref name="keys"/>.Length of them, and moves <paramref name="next"/> to where the next call starts
    /// (<paramref name="end"/> when through). Each record's range goes to <paramref name="ranges"/>. With
    /// <paramref name="payloads"/>, live records' payloads are copied there and deleted ones skipped; with
    /// <paramref name="deleted"/>, deleted ones are kept and flagged there.
    /// </summary>
    internal int ScanRanges(TableHandle table, Ring ring, bool[] wanted, ref long next, long end, ulong[] keys, int[] ranges, byte[]? payloads, bool[]? deleted = null)
    {
        _maintenance.Wait();
        try
        {
            CheckRangesUnchanged(ring, table);
            if (_store.Log.BeginAddress > next)
                throw new InvalidOperationException($"The log was compacted while ranges of table {table} were being read; read them again.");
            if (next >= end) return 0;
            var scan = new RangeScan(table, ring, wanted, keys, ranges, payloads, deleted);
            _store.Log.Scan(ref scan, next, end);
            next = scan.StoppedAt ?? end;
            return scan.Count;
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>Push scan over the log collecting some ranges' records of one table; a mutable struct passed by reference.</summary>
    private struct RangeScan(TableHandle table, Ring ring, bool[] wanted, ulong[] keys, int[] ranges, byte[]? payloads, bool[]? deleted) : IScanIteratorFunctions<RowKey, SpanByte>
    {
        private readonly int _payloadBytes = table._layout.PayloadBytes;

        /// <summary>Records collected.</summary>
        public int Count { get; private set; }

        /// <summary>The address of the first record that did not fit; null when the scan went to its end.</summary>
        public long? StoppedAt { get; private set; }

        public readonly bool OnStart(long beginAddress, long endAddress) => true;

        public bool SingleReader(ref RowKey key, ref SpanByte value, RecordMetadata recordMetadata, long numberOfRecords)
        {
            if (key.Table != table.Id || key.Kind != RowKind.Row) return true;
            int range = ring.RangeOf(table.RingHash, key.Key);
            if (!wanted[range]) return true;
            bool tombstone = recordMetadata.RecordInfo.Tombstone;
            if (tombstone && deleted is null) return true;
            if (Count == keys.Length)
            {
                StoppedAt = recordMetadata.Address;
                return false;
            }
            keys[Count] = key.Key;
            ranges[Count] = range;
            if (deleted is not null) deleted[Count] = tombstone;
            if (payloads is not null && !tombstone)
            {
                ReadOnlySpan<byte> payload = value.AsReadOnlySpan();
                if (payload.Length != _payloadBytes)
                    throw new InvalidDataException($"A record of table {table} holds {payload.Length} bytes; its layout has {_payloadBytes}.");
                payload.CopyTo(payloads.AsSpan(Count * _payloadBytes, _payloadBytes));
            }
            Count++;
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
    /// Writes transferred records (<see cref="RecordBatch"/>es, one or several back to back, any ranges of
    /// <paramref name="table"/>): each row becomes the payload as given, values and optimizer state, and each range's
    /// vector clock rises to its batch's where it is higher. All of them go to the write-ahead log as one record,
    /// verbatim, and are applied inside one push-gate section, so a checkpoint holds all of them or none; a log
    /// record costs ~0.1 ms, so a replication message of many ranges should be one call. Applying the same batches
    /// twice leaves the same state as once; batches of one copy go in their order.
    /// </summary>
    /// <returns>Completes when the batches are durable in the store's mode; already faulted when the log refused them
    /// (then nothing was applied).</returns>
    /// <exception cref="ArgumentException">A batch is malformed, or does not fit this table or this store's ranges
    /// (another table's id, another layout, a key outside its range or beyond <c>maxKey</c>): nothing changed.</exception>
    public Task ApplyRecords(TableHandle table, ReadOnlySpan<byte> batches)
    {
        ArgumentNullException.ThrowIfNull(table);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var slices = new List<System.Range>();
        if (!RecordBatch.TrySplit(batches, slices, out _, out string error)) throw new ArgumentException(error, nameof(batches));
        return ApplyRecordBatches(table, batches, slices) ?? Task.CompletedTask;
    }

    /// <summary>
    /// Deletes every row of <paramref name="table"/> in the range that ends at <paramref name="token"/> and sets the
    /// range's vector clock back to 0 for every worker: the node no longer holds the range, or is about to receive
    /// it again from its primary. The caller stops writes to the range first; a push to it while it is dropped may
    /// survive the drop. Logged, so a restart drops it again.
    /// </summary>
    /// <returns>Rows deleted, and the task to await before telling anyone.</returns>
    /// <exception cref="ArgumentException">The token is not one of this store's ranges.</exception>
    public (long Rows, Task Durable) DropRange(TableHandle table, ulong token) => DropRanges(table, [token]);

    /// <summary>
    /// <see cref="DropRange"/> for several ranges at once: one pass over the log finds their keys (a pass per range
    /// costs a whole log read each; a returning node is sent about a hundred ranges), and one log record drops them.
    /// </summary>
    /// <exception cref="ArgumentException">No token, or one that is not one of this store's ranges.</exception>
    public (long Rows, Task Durable) DropRanges(TableHandle table, IReadOnlyList<ulong> tokens)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count == 0) throw new ArgumentException("No range to drop.", nameof(tokens));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        foreach (ulong token in tokens) RangeIndex(Ranges, token, nameof(tokens));
        var (rows, durable) = ApplyDropRanges(table, tokens);
        return (rows, durable ?? Task.CompletedTask);
    }

    /// <summary>The range index of a token in <paramref name="ring"/>, or an <see cref="ArgumentException"/> naming it.</summary>
    private static int RangeIndex(Ring ring, ulong token, string paramName)
    {
        int range = ring.Tokens.BinarySearch(token);
        if (range < 0) throw new ArgumentException($"Ring token {token} does not end one of this node's ranges.", paramName);
        return range;
    }

    /// <summary>A range index is good only with the ranges it was found in: <see cref="SetRanges"/> renumbers them.</summary>
    private void CheckRangesUnchanged(Ring ring, TableHandle table)
    {
        if (!ReferenceEquals(ring, Ranges))
            throw new InvalidOperationException($"The store's ranges changed while ranges of table {table} were being read or dropped; start again.");
    }

    /// <summary>Checks everything about a parsed batch against the table and the ring before anything is written.</summary>
    private static void CheckFits(Ring ring, TableHandle table, in RecordBatch records)
    {
        if (records.TableId != table.Id)
            throw new ArgumentException($"The record batch is of table id {records.TableId}, not table {table}.", "batch");
        if (records.PayloadBytes != table._layout.PayloadBytes)
            throw new ArgumentException($"The record batch's rows have {records.PayloadBytes} bytes; table {table} with its updater stores {table._layout.PayloadBytes}.", "batch");
        int range = RangeIndex(ring, records.Token, "batch");
        ReadOnlySpan<ulong> keys = records.Keys;
        if (keys.Length > 0 && table.Schema.MaxKey is { } maxKey && keys[^1] >= maxKey)
            throw new ArgumentException($"The record batch holds key {keys[^1]}, beyond table {table}'s maxKey {maxKey}.", "batch");
        foreach (ulong key in keys)
        {
            if (ring.RangeOf(table.RingHash, key) != range)
                throw new ArgumentException($"The record batch of range {records.Token} holds key {key}, which lies in another range.", "batch");
        }
    }

    /// <summary>
    /// Checks split batches against the table and the ranges, then logs them as one record and applies them; the
    /// single place transferred records go through, live or replayed. The checks run inside the push gate, where the
    /// ranges cannot change, and all of them before anything is logged.
    /// </summary>
    private unsafe Task? ApplyRecordBatches(TableHandle table, ReadOnlySpan<byte> bytes, List<System.Range> slices)
    {
        // Every clock entry of every batch, with the batch it is in; their locks in worker order, before the gate.
        var entries = new List<(int Batch, uint Worker, ulong Clock, WorkerClocks Clocks)>();
        var locks = new SortedList<uint, WorkerClocks>();
        for (int b = 0; b < slices.Count; b++)
        {
            RecordBatch batch = RecordBatch.Of(bytes[slices[b]]);
            for (int i = 0; i < batch.ClockCount; i++)
            {
                var (worker, clock) = batch.ClockAt(i);
                if (!_registry.TryGet(worker, out _)) continue;   // removed: forgotten here too
                WorkerClocks clocks = table._clocks.For(worker);
                entries.Add((b, worker, clock, clocks));
                locks.TryAdd(worker, clocks);
            }
        }
        Task? durable;
        using (HeldClockLocks.Enter([.. locks.Values]))
        {
            _pushGate.EnterReadLock();
            try
            {
                Ring ring = Ranges;
                foreach (System.Range slice in slices) CheckFits(ring, table, RecordBatch.Of(bytes[slice]));
                Failpoints.Hit(Failpoints.RecordsBeforeLog);
                durable = LogSystemRecord(WalRecordKind.Records, bytes);
                if (durable is { IsFaulted: true }) return durable;   // the log refused them: nothing applied
                foreach (System.Range slice in slices)
                {
                    RecordBatch batch = RecordBatch.Of(bytes[slice]);
                    if (batch.Count == 0) continue;
                    fixed (ulong* k = batch.Keys)
                    fixed (byte* p = batch.Payloads)
                    {
                        RunChunks<PutRecord>(new PinnedBatch(table, isRange: false, 0, k, (float*)p, batch.Count) { Stride = batch.PayloadBytes / sizeof(float) });
                    }
                }
                var touched = new HashSet<uint>();
                foreach (var (b, worker, clock, clocks) in entries)
                {
                    int range = ring.Tokens.BinarySearch(RecordBatch.Of(bytes[slices[b]]).Token);
                    if (clocks.Ranges[range] >= clock) continue;
                    clocks.Ranges[range] = clock;
                    touched.Add(worker);
                }
                foreach (uint worker in touched)
                {
                    WorkerClocks clocks = locks[worker];
                    clocks.Recompute();
                    WriteClockRecord(table, worker, clocks);
                }
            }
            finally
            {
                _pushGate.ExitReadLock();
            }
        }
        // Pulls waiting for these clocks re-check, outside the locks (as after a clocked push).
        if (entries.Count > 0 && table._clocks.HasWaiters) table._clocks.Release(Floor(table));
        return durable;
    }

    /// <summary>Logs and applies a drop of ranges; the single place drops go through, live or replayed.</summary>
    private unsafe (long Rows, Task? Durable) ApplyDropRanges(TableHandle table, IReadOnlyList<ulong> tokens)
    {
        // The keys first, outside the push gate (a scan of the whole log); the caller has stopped writes to the ranges.
        // In log order the last version of a key decides whether it is a row now.
        Ring ring = Ranges;
        bool[] wanted = new bool[ring.Count];
        foreach (ulong token in tokens) wanted[RangeIndex(ring, token, nameof(tokens))] = true;
        var live = new Dictionary<ulong, (bool Live, int Range)>();
        long next = _store.Log.BeginAddress, end = _store.Log.TailAddress;
        ulong[] keys = new ulong[ScanChunkKeys];
        int[] ranges = new int[ScanChunkKeys];
        bool[] deleted = new bool[ScanChunkKeys];
        while (next < end)
        {
            int n = ScanRanges(table, ring, wanted, ref next, end, keys, ranges, payloads: null, deleted);
            for (int i = 0; i < n; i++) live[keys[i]] = (!deleted[i], ranges[i]);
        }
        var clocks = new List<(uint Worker, WorkerClocks Clocks)>();
        foreach (uint worker in WorkerIds()) clocks.Add((worker, table._clocks.For(worker)));
        long rows = 0;
        using (HeldClockLocks.Enter(clocks.ConvertAll(c => c.Clocks)))
        {
            _pushGate.EnterReadLock();
            try
            {
                CheckRangesUnchanged(ring, table);
                // table id, then the tokens: 12 bytes for one range, as single drops were logged before.
                byte[] record = new byte[4 + 8 * tokens.Count];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record, table.Id);
                for (int t = 0; t < tokens.Count; t++) System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(4 + 8 * t), tokens[t]);
                Task? durable = LogSystemRecord(WalRecordKind.DropRange, record);
                if (durable is { IsFaulted: true }) return (0, durable);
                long[] perRange = new long[ring.Count];
                RowSession session = _sessions.Rent();
                try
                {
                    foreach (var (key, (isLive, range)) in live)
                    {
                        var rowKey = new RowKey(table.Id, key);
                        int stripe = RowLatches.StripeOf(rowKey);
                        _latches.Enter(stripe, Environment.CurrentManagedThreadId);
                        try
                        {
                            session.Delete(ref rowKey);
                        }
                        finally
                        {
                            _latches.Exit(stripe);
                        }
                        if (isLive) perRange[range]++;
                    }
                    session.CompletePending(wait: true);
                }
                finally
                {
                    _sessions.Return(session);
                }
                for (int range = 0; range < perRange.Length; range++)
                {
                    if (perRange[range] == 0) continue;
                    rows += perRange[range];
                    table.RangeRows?.Remove(range, perRange[range]);
                }
                table.SetRows(Math.Max(0, table.Rows - rows));
                foreach (var (worker, entry) in clocks)
                {
                    bool moved = false;
                    for (int range = 0; range < wanted.Length; range++)
                    {
                        if (!wanted[range] || entry.Ranges[range] == 0) continue;
                        entry.Ranges[range] = 0;
                        moved = true;
                    }
                    if (!moved) continue;
                    entry.Recompute();
                    WriteClockRecord(table, worker, entry);
                }
                return (rows, durable);
            }
            finally
            {
                _pushGate.ExitReadLock();
            }
        }
    }

    /// <summary>Replays logged record batches: checked when they were applied, so a failed check now means the log is wrong.</summary>
    private void ReplayRecords(long lsn, ReadOnlySpan<byte> bytes)
    {
        var slices = new List<System.Range>();
        if (!RecordBatch.TrySplit(bytes, slices, out _, out string error) || slices.Count == 0)
            throw new WalCorruptException($"Write-ahead log record {lsn} holds record batches that do not parse: {error}");
        RecordBatch first = RecordBatch.Of(bytes[slices[0]]);
        if (!_catalog.TryGet(first.TableId, out TableHandle? table)) return;   // its table was deleted later in the log
        try
        {
            ApplyRecordBatches(table!, bytes, slices);
        }
        catch (ArgumentException e)
        {
            throw new WalCorruptException($"Write-ahead log record {lsn} holds record batches that this store's ranges or table '{table!.Name}' do not match: {e.Message}");
        }
    }

    /// <summary>Replays a logged drop of one range or several.</summary>
    private void ReplayDropRange(long lsn, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 12 || (bytes.Length - 4) % 8 != 0)
            throw new WalCorruptException($"Write-ahead log record {lsn} is a range drop of {bytes.Length} bytes, not 4 + 8 per range.");
        uint tableId = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        if (!_catalog.TryGet(tableId, out TableHandle? table)) return;   // its table was deleted later in the log
        var tokens = new ulong[(bytes.Length - 4) / 8];
        for (int t = 0; t < tokens.Length; t++)
        {
            tokens[t] = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes[(4 + 8 * t)..]);
            if (Ranges.Tokens.BinarySearch(tokens[t]) < 0) throw new WalCorruptException($"Write-ahead log record {lsn} drops range {tokens[t]}, which is not one of this store's ranges.");
        }
        ApplyDropRanges(table!, tokens);
    }
}

/// <summary>A transferred record: an RMW that makes the row the given payload (<see cref="RowInput.Record"/>).</summary>
internal readonly unsafe struct PutRecord : IRowOperation
{
    public static bool Writes => true;

    public static Status Run(RowSession session, ref RowKey key, ref RowInput input, ref RowOutput output, float* row)
    {
        input.Record = (byte*)row;
        return session.RMW(ref key, ref input, ref output);
    }
}
