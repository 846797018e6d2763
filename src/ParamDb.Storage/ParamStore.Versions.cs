using System.Buffers;
using FASTER.core;
using ParamDb.Protocol;
using ParamDb.Storage.Durability;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>
/// Vector clocks and workers (docs/consistency.md): clocked pushes are exactly-once per (worker, clock) per range,
/// clocks persist in the same store as the rows, and consistent pulls wait without a thread.
/// </summary>
public sealed partial class ParamStore
{
    /// <summary>Largest worker-registry record: like the catalog, half a log page (thousands of workers).</summary>
    private const int MaxRegistryBytes = 1 << 20;

    private readonly Lock _registryLock = new();
    private WorkerRegistry _registry = new();

    /// <summary>
    /// An empty push: advances <paramref name="stamp"/>'s clock on every range of the table, so pulls waiting for
    /// this worker move on although it had no rows for this node (docs/consistency.md).
    /// </summary>
    /// <param name="table">The table.</param>
    /// <param name="stamp">The worker and its clock.</param>
    /// <param name="rangesVersion">As for <see cref="Push"/>: nothing moves if the ranges changed since; 0: not checked.</param>
    public PushOutcome Tick(TableHandle table, WorkerStamp stamp, long rangesVersion = 0)
    {
        ArgumentNullException.ThrowIfNull(table);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return ApplyPush(table, new BatchKeys(ReadOnlySpan<ulong>.Empty), ReadOnlySpan<float>.Empty, stamp, rangesVersion);
    }

    /// <summary>
    /// The table's clock as pull replies report it (<c>ParamDb-Clock-Min</c>): the lowest clock of any live
    /// worker that counts for the table, over the table's ranges on this node; 0 when no worker counts.
    /// </summary>
    public ulong ClockMin(TableHandle table)
    {
        ArgumentNullException.ThrowIfNull(table);
        ulong floor = Floor(table);
        return floor == ulong.MaxValue ? 0 : floor;
    }

    /// <summary>
    /// Waits until every live worker that counts for the table has reached <paramref name="target"/> on all
    /// its ranges, or the timeout passes. No thread waits: the push, lease expiry or worker removal that lifts
    /// the minimum completes the wait.
    /// </summary>
    public async ValueTask<ClockWaitResult> WaitForClockAsync(TableHandle table, ulong target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(table);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ulong floor = Floor(table);
        if (floor >= target) return new ClockWaitResult(ClockWaitStatus.Reached, ClockMin(table), []);
        var waiter = new ClockWaiter(target);
        table._clocks.Add(waiter);
        // A push may have advanced the clock between the check and the queueing: check again.
        table._clocks.Release(Floor(table));
        try
        {
            return await waiter.Task.WaitAsync(timeout, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            table._clocks.Abandon(waiter);
            if (waiter.Task.IsCompletedSuccessfully) return waiter.Task.Result;   // released as the timer fired
            return new ClockWaitResult(ClockWaitStatus.TimedOut, ClockMin(table), Behind(table, target));
        }
        catch (OperationCanceledException)
        {
            table._clocks.Abandon(waiter);
            throw;
        }
    }

    /// <summary>
    /// Adds a worker under the id its directory assigned (<see cref="IWorkerDirectory"/>), so its clocked pushes
    /// are accepted and it counts for consistent pulls. Durable once this returns, and from the next checkpoint
    /// on together with the clocks. Its lease starts now; the directory renews and expires it.
    /// </summary>
    /// <param name="id">Worker id, ≥ 1, above every id used before in this store (ids are never reused).</param>
    /// <param name="name">A name for people, 1…128 characters.</param>
    /// <param name="tables">Tables the worker counts for (validated names); empty for every table.</param>
    /// <param name="leaseMs">Lease, <see cref="WorkerLimits.MinLeaseMs"/>…<see cref="WorkerLimits.MaxLeaseMs"/>.</param>
    /// <exception cref="ArgumentException">The id was used before.</exception>
    public WorkerState AddWorker(uint id, string name, IReadOnlyList<string> tables, int leaseMs)
    {
        ArgumentOutOfRangeException.ThrowIfZero(id);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(tables);
        ArgumentOutOfRangeException.ThrowIfLessThan(leaseMs, WorkerLimits.MinLeaseMs);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(leaseMs, WorkerLimits.MaxLeaseMs);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Worker worker;
        long now = NowTicks;
        Task? durable;
        lock (_registryLock)
        {
            if (id < _registry.NextId) throw new ArgumentException($"Worker id {id} was used before in this store (the next free id is {_registry.NextId}).", nameof(id));
            worker = _registry.Add(id, name, [.. tables], leaseMs, now);
            durable = WriteRegistry();
        }
        WaitDurable(durable);
        return worker.ToState(now);
    }

    /// <summary>The lowest worker id never used in this store: what a local directory assigns next.</summary>
    public uint NextWorkerId => _registry.NextId;

    /// <summary>Whether a worker of that id is registered in this store.</summary>
    public bool HasWorker(uint id) => _registry.TryGet(id, out _);

    /// <summary>The ids of the registered workers, ascending.</summary>
    public uint[] WorkerIds()
    {
        Worker[] all = _registry.All;
        var ids = new uint[all.Length];
        for (int i = 0; i < all.Length; i++) ids[i] = all[i].Id;
        return ids;
    }

    /// <summary>The workers as this store knows them (leases are kept by the directory).</summary>
    internal WorkerRegistry Workers => _registry;

    /// <summary>The current time of the store's clock, in ticks.</summary>
    internal long NowTicks => _options.TimeProvider.GetUtcNow().UtcTicks;

    /// <summary>The clock leases are measured by (tests pass a fake one in <see cref="StoreOptions.TimeProvider"/>).</summary>
    public TimeProvider TimeProvider => _options.TimeProvider;

    /// <summary>
    /// Drops a worker: it stops counting at once (waiting pulls re-check), and its clocks are forgotten, so a
    /// push stamped with its id is refused from now on.
    /// </summary>
    /// <returns>False when no worker has that id.</returns>
    public bool DropWorker(uint worker)
    {
        Task? durable;
        lock (_registryLock)
        {
            if (!_registry.Remove(worker)) return false;
            durable = WriteRegistry();
        }
        WaitDurable(durable);
        foreach (TableHandle table in _catalog.Sorted) table._clocks.Forget(worker);
        ReleaseAllTables();
        return true;
    }

    /// <summary>
    /// The lowest clock over live workers counting for the table; <see cref="ulong.MaxValue"/> when none does,
    /// so every target is reached (there is nobody to wait for).
    /// </summary>
    private ulong Floor(TableHandle table)
    {
        ulong floor = ulong.MaxValue;
        foreach (Worker w in _registry.All)
            if (w.Live && w.CountsFor(table.Name)) floor = Math.Min(floor, table._clocks.MinOf(w.Id));
        return floor;
    }

    private List<LaggingWorker> Behind(TableHandle table, ulong target)
    {
        var behind = new List<LaggingWorker>();
        foreach (Worker w in _registry.All)
        {
            if (!w.Live || !w.CountsFor(table.Name)) continue;
            ulong clock = table._clocks.MinOf(w.Id);
            if (clock < target) behind.Add(new LaggingWorker(w.Id, w.Name, clock));
        }
        return behind;
    }

    /// <summary>Lets every waiting pull re-check its clocks: the set of workers that count changed.</summary>
    internal void ReleaseAllTables()
    {
        foreach (TableHandle table in _catalog.Sorted)
            if (table._clocks.HasWaiters) table._clocks.Release(Floor(table));
    }

    /// <summary>
    /// Applies a clocked push under the worker's lock: logged, skipped where the ranges have seen the clock, then
    /// every range of the table advanced and the clock record written, all inside one push-gate section so a
    /// checkpoint holds both or neither. The lock orders a worker's pushes in the log as they were applied, so
    /// replay skips exactly what the live store skipped.
    /// </summary>
    /// <returns>Rows applied; -1 when the ranges changed since <paramref name="rangesVersion"/> (nothing applied).</returns>
    private unsafe long ApplyClocked(TableHandle table, in PinnedBatch batch, WorkerStamp stamp, BatchKeys keys, ReadOnlySpan<float> values, long rangesVersion, out Task? durable)
    {
        WorkerClocks clocks = table._clocks.For(stamp.Worker);
        long applied;
        lock (clocks)
        {
            if (stamp.Clock <= clocks.Min)
            {
                // A retry of a push every range already has; acknowledge it once that push is durable.
                durable = DurableSoFar();
                return 0;
            }
            _pushGate.EnterReadLock();
            try
            {
                if (rangesVersion != 0 && rangesVersion != _rangesVersion)
                {
                    durable = null;
                    return -1;
                }
                durable = LogPush(table, keys, values, stamp);
                if (durable is { IsFaulted: true }) return 0;   // the log refused it: nothing applied, the clock stays
                if (stamp.Clock > clocks.Max)
                {
                    if (batch.Count > 0) RunChunks<PushRow>(batch);
                    applied = batch.Count;
                }
                else applied = ApplyToNewerRanges(table, batch, clocks, stamp.Clock);
                clocks.AdvanceAll(stamp.Clock);
                WriteClockRecord(table, stamp.Worker, clocks);
                Tap(table, keys, clocked: true);
            }
            finally
            {
                _pushGate.ExitReadLock();
            }
        }
        if (table._clocks.HasWaiters) table._clocks.Release(Floor(table));
        return applied;
    }

    /// <summary>
    /// The rare mixed case (a range moved in at another clock): each row's range decides, and runs of rows with
    /// the same decision are applied as one chunk.
    /// </summary>
    private long ApplyToNewerRanges(TableHandle table, in PinnedBatch batch, WorkerClocks clocks, ulong clock)
    {
        Ring ring = _ring;
        long applied = 0;
        int runStart = -1;
        for (int i = 0; i <= batch.Count; i++)
        {
            bool apply = i < batch.Count && clock > clocks.Ranges[ring.RangeOf(table.RingHash, batch.KeyAt(i))];
            if (apply && runStart < 0) runStart = i;
            else if (!apply && runStart >= 0)
            {
                RunChunk<PushRow>(batch, runStart, i);
                applied += i - runStart;
                runStart = -1;
            }
        }
        return applied;
    }

    private unsafe void WriteClockRecord(TableHandle table, uint worker, WorkerClocks clocks)
    {
        int size = ClockRecord.SizeOf(clocks.Ranges.Length);
        byte[]? rented = size > 4096 ? ArrayPool<byte>.Shared.Rent(size) : null;
        Span<byte> bytes = rented is null ? stackalloc byte[size] : rented.AsSpan(0, size);
        try
        {
            ClockRecord.Write(bytes, _ring, clocks.Ranges);
            UpsertRecord(RowKey.ClockKey(table.Id, worker), bytes);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Logs and writes the registry record; the caller holds <see cref="_registryLock"/> and waits for the returned task after releasing it.</summary>
    private Task? WriteRegistry()
    {
        byte[] bytes = _registry.Serialize();
        if (bytes.Length > MaxRegistryBytes)
            throw new InvalidOperationException($"The worker registry would take {bytes.Length} bytes; at most {MaxRegistryBytes} fit in one log record. Remove workers first.");
        _pushGate.EnterReadLock();
        try
        {
            Task? durable = LogSystemRecord(WalRecordKind.Registry, bytes);
            UpsertRecord(RowKey.WorkersKey, bytes);
            return durable;
        }
        finally
        {
            _pushGate.ExitReadLock();
        }
    }

    /// <summary>Upserts one record under its <see cref="RowLatches"/> stripe. Upsert never goes pending: it is a blind append (or an in-place write).</summary>
    private unsafe void UpsertRecord(RowKey key, ReadOnlySpan<byte> bytes)
    {
        RowSession session = _sessions.Rent();
        int stripe = RowLatches.StripeOf(key), owner = Environment.CurrentManagedThreadId;
        _latches.Enter(stripe, owner);   // never called while this thread holds a stripe
        try
        {
            fixed (byte* p = bytes)
            {
                SpanByte value = SpanByte.FromPointer(p, bytes.Length);
                session.Upsert(ref key, ref value);
            }
        }
        finally
        {
            _latches.Exit(stripe);
            _sessions.Return(session);
        }
    }
}
