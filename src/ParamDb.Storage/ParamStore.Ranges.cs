using ParamDb.Protocol;
using ParamDb.Storage.Durability;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>The ranges the store keeps vector clocks for, and changing them at run time (docs/replication.md).</summary>
public sealed partial class ParamStore
{
    /// <summary>The ranges now; swapped whole by <see cref="SetRanges"/>.</summary>
    private Ring _ring;

    /// <summary>
    /// The ranges this store keeps one vector clock per worker for: range i is the arc of the ring that ends at
    /// token i. A single node keeps <see cref="StoreOptions.Ring"/>; a cluster node keeps the ranges it holds, and
    /// changes them with <see cref="SetRanges"/> when the ring does.
    /// </summary>
    public Ring Ranges => Volatile.Read(ref _ring);

    /// <summary>
    /// Makes <paramref name="ring"/> the store's ranges. Every worker's clock moves with its positions: a new range
    /// gets the clock of the old range it lies in (a range split in two keeps its clock in both halves; ranges that
    /// merge keep the clock of the one that ends at the kept token). Rows are not touched. Logged, and kept in a
    /// system record, so a restart comes back with these ranges whatever <see cref="StoreOptions.Ring"/> says.
    /// Pushes wait while it runs (it holds the push gate exclusively, like the start of a checkpoint).
    /// </summary>
    /// <returns>Completes when the change is durable in the store's mode.</returns>
    public Task SetRanges(Ring ring)
    {
        ArgumentNullException.ThrowIfNull(ring);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return ApplySetRanges(ring) ?? Task.CompletedTask;
    }

    /// <summary>Logs and applies a change of ranges; the single place it goes through, live or replayed.</summary>
    private Task? ApplySetRanges(Ring next)
    {
        lock (_catalogLock)   // no table is created with the old count meanwhile
        {
            Ring current = _ring;
            if (current.Tokens.SequenceEqual(next.Tokens)) return null;
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
                    byte[] record = RangesRecord.Write(next);
                    Task? durable = LogSystemRecord(WalRecordKind.Ranges, record);
                    if (durable is { IsFaulted: true }) return durable;   // the log refused it: nothing changed
                    foreach (TableHandle table in _catalog.Sorted) table._clocks.Remap(map);
                    Volatile.Write(ref _ring, next);
                    UpsertRecord(RowKey.RangesKey, record);
                    // Clock records name ranges by token: written again for the new tokens, in this same section.
                    foreach (var (table, worker, clocks) in entries) WriteClockRecord(table, worker, clocks);
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

    /// <summary>At open, before the catalog and the clocks are read: the ranges a ranges record says, if there is one.</summary>
    private void RecoverRanges(byte[]? record)
    {
        if (record is null) return;
        if (!RangesRecord.TryRead(record, out Ring? ring))
            throw new InvalidDataException("The stored ranges record does not parse; the store's vector clocks cannot be placed.");
        _ring = ring!;
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
