using ParamDb.Protocol;
using ParamDb.Storage.Durability;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>The ranges the store keeps vector clocks for, and changing them at run time (docs/replication.md).</summary>
public sealed partial class ParamStore
{
    /// <summary>The ranges now; swapped whole by <see cref="SetRanges"/>.</summary>
    private Ring _ring;

    /// <summary>How many ranges the clocks have and which are served; swapped with <see cref="_ring"/>.</summary>
    private RangeShape _shape;

    /// <summary>Bumped by every change of <see cref="_ring"/> or <see cref="_shape"/>, under the push gate's write lock.</summary>
    private long _rangesVersion = 1;

    /// <summary>Whether tables count their rows per range (<see cref="RecountRangeRows"/>): once any range is held, from then on.</summary>
    private bool _countingRanges;

    /// <summary>
    /// The ranges this store keeps one vector clock per worker for: range i is the arc of the ring that ends at
    /// token i. A single node keeps <see cref="StoreOptions.Ring"/>; a cluster node keeps the ranges it holds, and
    /// changes them with <see cref="SetRanges"/> when the ring does.
    /// </summary>
    public Ring Ranges => Volatile.Read(ref _ring);

    /// <summary>
    /// Which ranges the store has and serves, as a number that changes whenever they do (from 1). A router that
    /// slices a push by its ring passes the version its store had for that ring (<c>rangesVersion</c> of
    /// <see cref="Push"/>, <see cref="PushRange"/>, <see cref="Tick"/>): a clocked push advances every served range,
    /// so applied after a failover made the store serve more, it would mark the promoted ranges as having a push
    /// whose keys there went to the dead primary, and its retry would be skipped there.
    /// </summary>
    public long RangesVersion => Volatile.Read(ref _rangesVersion);

    /// <summary>Whether the store serves the range that ends at <paramref name="token"/> (it is primary for it) rather than holding a copy.</summary>
    public bool Serves(ulong token)
    {
        int range = Ranges.Tokens.BinarySearch(token);
        return range >= 0 && Volatile.Read(ref _shape).Serves(range);
    }

    /// <summary>
    /// Makes <paramref name="ring"/> the store's ranges, serving those that end at <paramref name="served"/> (null:
    /// all of them) and holding the others as copies for other nodes. Every worker's clock moves with its positions:
    /// a new range gets the clock of the old range it lies in (a range split in two keeps its clock in both halves;
    /// ranges that merge keep the clock of the one that ends at the kept token). A clocked push advances the served
    /// ranges only, and consistent pulls wait on them only; a held range's clock moves with the records replicated to
    /// it. Rows are not touched. Logged, and kept in a system record, so a restart comes back with these ranges
    /// whatever <see cref="StoreOptions.Ring"/> says. Pushes wait while it runs (it holds the push gate exclusively,
    /// like the start of a checkpoint).
    /// </summary>
    /// <returns>Completes when the change is durable in the store's mode.</returns>
    /// <exception cref="ArgumentException">A served token is not one of the ring's.</exception>
    public Task SetRanges(Ring ring, IReadOnlyCollection<ulong>? served = null)
    {
        ArgumentNullException.ThrowIfNull(ring);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        bool[]? flags = null;
        if (served is not null)
        {
            flags = new bool[ring.Count];
            foreach (ulong token in served) flags[RangeIndex(ring, token, nameof(served))] = true;
        }
        return ApplySetRanges(ring, new RangeShape(ring.Count, flags)) ?? Task.CompletedTask;
    }

    /// <summary>Logs and applies a change of ranges; the single place it goes through, live or replayed.</summary>
    private Task? ApplySetRanges(Ring next, RangeShape shape)
    {
        lock (_catalogLock)   // no table is created with the old ranges meanwhile
        {
            Ring current = _ring;
            if (current.Tokens.SequenceEqual(next.Tokens) && SameServed(_shape, shape)) return null;
            var map = new int[next.Count];
            for (int i = 0; i < map.Length; i++) map[i] = current.RangeOf(next.Tokens[i]);

            // Every worker's lock, in table then worker order, before the gate: the order a clocked push takes its one lock in.
            var entries = new List<(TableHandle Table, uint Worker, WorkerClocks Clocks)>();
            foreach (TableHandle table in _catalog.Sorted)
                foreach (var (worker, clocks) in table._clocks.Entries.OrderBy(e => e.Key))
                    entries.Add((table, worker, clocks));
            using (HeldClockLocks.Enter(entries.ConvertAll(e => e.Clocks)))
            {
                _pushGate.EnterWriteLock();
                try
                {
                    byte[] record = RangesRecord.Write(next, shape);
                    Task? durable = LogSystemRecord(WalRecordKind.Ranges, record);
                    if (durable is { IsFaulted: true }) return durable;   // the log refused it: nothing changed
                    foreach (TableHandle table in _catalog.Sorted) table._clocks.Remap(map, shape);
                    Volatile.Write(ref _shape, shape);
                    Volatile.Write(ref _ring, next);
                    Interlocked.Increment(ref _rangesVersion);
                    UpsertRecord(RowKey.RangesKey, record);
                    // Clock records name ranges by token: written again for the new tokens, in this same section.
                    foreach (var (table, worker, clocks) in entries) WriteClockRecord(table, worker, clocks);
                    RecountRangeRows();
                    _logger.RangesChanged(current.Count, next.Count);
                    return durable;
                }
                finally
                {
                    _pushGate.ExitWriteLock();
                }
            }
        }
    }

    /// <summary>
    /// Brings every table's rows per range (<see cref="TableHandle.RangeRows"/>) to the ranges now, which a node's
    /// row count needs once it holds ranges it does not serve: kept as they are when only which ranges are served
    /// changed (a failover), else one pass over the live records (at open, and when the tokens change); dropped
    /// while every range is served. Called where no row is inserted meanwhile: at open, or under the push gate.
    /// </summary>
    internal void RecountRangeRows()
    {
        RangeShape shape = _shape;
        Ring ring = _ring;
        IReadOnlyList<TableHandle> tables = _catalog.Sorted;
        bool anyHeld = false;
        for (int i = 0; i < shape.Count && !anyHeld; i++) anyHeld = !shape.Serves(i);
        if (!anyHeld && !_countingRanges) return;
        bool current = _countingRanges;
        foreach (TableHandle table in tables)
            current &= table.RangeRows is { } counts && counts.Ring.Tokens.SequenceEqual(ring.Tokens);
        if (current) return;   // the same tokens: the counts still hold, whichever ranges are served

        var scan = new RangeRowScan(_catalog, ring);
        RowSession session = _sessions.Rent();
        try
        {
            session.Iterate(ref scan);
        }
        finally
        {
            _sessions.Return(session);
        }
        foreach (TableHandle table in tables)
            table.RangeRows = new RangeRowCounts(ring, scan.Counts.TryGetValue(table.Id, out long[]? counts) ? counts : new long[ring.Count]);
        _countingRanges = true;
    }

    /// <summary>At open, before the catalog and the clocks are read: the ranges a ranges record says, if there is one.</summary>
    private void RecoverRanges(byte[]? record)
    {
        if (record is null) return;
        if (!RangesRecord.TryRead(record, out Ring? ring, out RangeShape? shape))
            throw new InvalidDataException("The stored ranges record does not parse; the store's vector clocks cannot be placed.");
        _ring = ring!;
        _shape = shape!;
    }

    private static bool SameServed(RangeShape a, RangeShape b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++)
            if (a.Serves(i) != b.Serves(i)) return false;
        return true;
    }
}

/// <summary>
/// Several workers' clock locks, taken in the list's order and released in reverse: what a change to many clocks
/// (a transferred batch, a range drop, new ranges) holds before it enters the push gate, as a clocked push holds
/// its one lock before it does.
/// </summary>
internal readonly struct HeldClockLocks : IDisposable
{
    private readonly List<WorkerClocks> _held;

    private HeldClockLocks(List<WorkerClocks> held) => _held = held;

    public static HeldClockLocks Enter(List<WorkerClocks> locks)
    {
        var held = new List<WorkerClocks>(locks.Count);
        try
        {
            foreach (WorkerClocks clocks in locks)
            {
                Monitor.Enter(clocks);
                held.Add(clocks);
            }
        }
        catch
        {
            new HeldClockLocks(held).Dispose();
            throw;
        }
        return new HeldClockLocks(held);
    }

    public void Dispose()
    {
        for (int i = _held.Count - 1; i >= 0; i--) Monitor.Exit(_held[i]);
    }
}

/// <summary>Counts the live rows of every table per range of <paramref name="ring"/>.</summary>
internal struct RangeRowScan(Catalog catalog, Ring ring) : FASTER.core.IScanIteratorFunctions<RowKey, FASTER.core.SpanByte>
{
    public Dictionary<uint, long[]> Counts { get; } = [];

    public readonly bool OnStart(long beginAddress, long endAddress) => true;

    public bool SingleReader(ref RowKey key, ref FASTER.core.SpanByte value, FASTER.core.RecordMetadata recordMetadata, long numberOfRecords)
    {
        if (key.Kind != RowKind.Row || key.Table == 0 || !catalog.TryGet(key.Table, out TableHandle? table)) return true;
        if (!Counts.TryGetValue(key.Table, out long[]? counts)) Counts[key.Table] = counts = new long[ring.Count];
        counts[ring.RangeOf(table!.RingHash, key.Key)]++;
        return true;
    }
    public bool ConcurrentReader(ref RowKey key, ref FASTER.core.SpanByte value, FASTER.core.RecordMetadata recordMetadata, long numberOfRecords) =>
        SingleReader(ref key, ref value, recordMetadata, numberOfRecords);

    public readonly void OnStop(bool completed, long numberOfRecords)
    {
    }

    public readonly void OnException(Exception exception, long numberOfRecords)
    {
    }
}
