using System.Collections.Concurrent;

namespace ParamDb.Storage.Versions;

/// <summary>
/// The vector clocks of one table on this node (per worker, per range) and the pulls waiting for them.
/// Waiting costs no thread: a waiter is a task completed by whichever push, lease expiry or worker removal
/// lifts the table's minimum clock to its target.
/// </summary>
internal sealed class TableClocks(RangeShape shape)
{
    private readonly ConcurrentDictionary<uint, WorkerClocks> _byWorker = new();
    private readonly Lock _waitLock = new();
    private readonly PriorityQueue<ClockWaiter, ulong> _waiters = new();
    private int _pendingWaiters;   // waiters not yet completed; read without the lock to skip Release on the hot path

    /// <summary>The store's ranges: how many each worker entry has, and which are served.</summary>
    public RangeShape Shape { get; private set; } = shape;

    /// <summary>Ranges per worker entry.</summary>
    public int Ranges => Shape.Count;

    /// <summary>
    /// The store's ranges changed: entry i of every worker becomes its old entry <c>map[i]</c> (the old range the new
    /// range lies in, so a split range keeps its clock in both halves), and <paramref name="shape"/> says which are
    /// served. The caller holds every worker's lock and the push gate exclusively.
    /// </summary>
    public void Remap(int[] map, RangeShape shape)
    {
        Shape = shape;
        foreach (WorkerClocks w in _byWorker.Values) w.Remap(map);
    }

    /// <summary>The workers with an entry, and their entries.</summary>
    public IEnumerable<KeyValuePair<uint, WorkerClocks>> Entries => _byWorker;

    /// <summary>The entry of <paramref name="worker"/>, created at clock 0 for every range.</summary>
    public WorkerClocks For(uint worker) => _byWorker.GetOrAdd(worker, static (_, owner) => new WorkerClocks(owner), this);

    /// <summary>The lowest clock of <paramref name="worker"/> over the ranges; 0 when it never pushed the table.</summary>
    public ulong MinOf(uint worker) => _byWorker.TryGetValue(worker, out var w) ? w.Min : 0;

    /// <summary>Drops a removed worker's entry.</summary>
    public void Forget(uint worker) => _byWorker.TryRemove(worker, out _);

    /// <summary>True while some pull waits on this table.</summary>
    public bool HasWaiters => Volatile.Read(ref _pendingWaiters) > 0;

    /// <summary>Queues a waiter for <see cref="ClockWaiter.Target"/>.</summary>
    public void Add(ClockWaiter waiter)
    {
        lock (_waitLock)
        {
            // Timed-out waiters stay queued until their target is passed; rebuild when they dominate.
            if (_waiters.Count > 1024 && _waiters.Count > 2 * Volatile.Read(ref _pendingWaiters)) Compact();
            _waiters.Enqueue(waiter, waiter.Target);
            Interlocked.Increment(ref _pendingWaiters);
        }
    }

    /// <summary>Completes every waiter whose target is at most <paramref name="floor"/> (<see cref="ulong.MaxValue"/>: no worker counts).</summary>
    public void Release(ulong floor)
    {
        ulong clockMin = floor == ulong.MaxValue ? 0 : floor;
        if (!HasWaiters) return;
        lock (_waitLock)
        {
            while (_waiters.TryPeek(out ClockWaiter? waiter, out ulong target) && target <= floor)
            {
                _waiters.Dequeue();
                if (waiter.TryComplete(new ClockWaitResult(ClockWaitStatus.Reached, clockMin, []))) Interlocked.Decrement(ref _pendingWaiters);
            }
        }
    }

    /// <summary>Marks a waiter that gave up (timeout, cancellation) as no longer pending.</summary>
    public void Abandon(ClockWaiter waiter)
    {
        if (waiter.TryAbandon()) Interlocked.Decrement(ref _pendingWaiters);
    }

    /// <summary>Ends every waiter with <paramref name="status"/>: the table was deleted or the store is closing.</summary>
    public void EndAll(ClockWaitStatus status)
    {
        lock (_waitLock)
        {
            while (_waiters.TryDequeue(out ClockWaiter? waiter, out _))
                if (waiter.TryComplete(new ClockWaitResult(status, 0, []))) Interlocked.Decrement(ref _pendingWaiters);
        }
    }

    private void Compact()
    {
        var live = new List<(ClockWaiter, ulong)>();
        while (_waiters.TryDequeue(out ClockWaiter? waiter, out ulong target))
            if (!waiter.IsDone) live.Add((waiter, target));
        _waiters.EnqueueRange(live);
    }
}

/// <summary>A pull waiting for a table's minimum clock to reach <see cref="Target"/>.</summary>
internal sealed class ClockWaiter(ulong target)
{
    private readonly TaskCompletionSource<ClockWaitResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _done;

    public ulong Target { get; } = target;

    public Task<ClockWaitResult> Task => _completion.Task;

    public bool IsDone => Volatile.Read(ref _done) != 0;

    public bool TryComplete(ClockWaitResult result) => Interlocked.Exchange(ref _done, 1) == 0 && _completion.TrySetResult(result);

    public bool TryAbandon() => Interlocked.Exchange(ref _done, 1) == 0;
}
