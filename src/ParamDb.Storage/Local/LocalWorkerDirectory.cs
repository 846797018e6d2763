using Microsoft.Extensions.Logging;

namespace ParamDb.Storage.Local;

/// <summary>
/// The worker directory of a single node: assigns worker ids from the store's next free id and keeps the leases.
/// A lease lives only in memory: workers recovered with the store start a fresh lease when the directory is
/// created (a worker that is still running keeps it with its next request; one that is gone stops counting one
/// lease later). Expiry runs on one timer, due at the earliest lease end.
/// </summary>
public sealed class LocalWorkerDirectory : IWorkerDirectory, IDisposable
{
    private readonly ParamStore store;
    private readonly ILogger logger;
    private readonly Lock timerLock = new();
    private readonly Lock changes = new();
    private ITimer? leaseTimer;
    private long leaseTimerDueTicks = long.MaxValue;
    private int disposed;

    /// <summary>Keeps the leases of <paramref name="store"/>'s workers, starting with those it recovered.</summary>
    public LocalWorkerDirectory(ParamStore store, ILogger logger)
    {
        this.store = store;
        this.logger = logger;
        long firstExpiry = long.MaxValue;
        foreach (Worker w in store.Workers.All) firstExpiry = Math.Min(firstExpiry, w.ExpiresAtTicks);
        if (firstExpiry != long.MaxValue) ArmLeaseTimer(firstExpiry);
    }

    /// <inheritdoc />
    public ValueTask<WorkerState> RegisterAsync(string name, IReadOnlyList<string> tables, int leaseMs, CancellationToken cancellationToken)
    {
        WorkerState state;
        lock (changes) state = store.AddWorker(store.NextWorkerId, name, tables, leaseMs);
        if (store.Workers.TryGet(state.Id, out Worker added)) ArmLeaseTimer(added.ExpiresAtTicks);
        logger.WorkerRegistered(state.Id, name, leaseMs);
        return new(state);
    }

    /// <inheritdoc />
    public ValueTask<WorkerState?> HeartbeatAsync(uint worker, CancellationToken cancellationToken) =>
        new(Renew(worker, out WorkerState state) ? state : null);

    /// <inheritdoc />
    public bool Touch(uint worker) => Renew(worker, out _);

    /// <inheritdoc />
    public IReadOnlyList<WorkerState> List()
    {
        long now = store.NowTicks;
        Worker[] all = store.Workers.All;
        var states = new WorkerState[all.Length];
        for (int i = 0; i < all.Length; i++) states[i] = all[i].ToState(now);
        return states;
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(uint worker, CancellationToken cancellationToken)
    {
        bool removed;
        lock (changes) removed = store.DropWorker(worker);
        if (removed) logger.WorkerRemoved(worker);
        return new(removed);
    }

    /// <summary>
    /// Starts keeping the lease of a worker someone else added to the store (a cluster's manager, through its
    /// mirror): from now, like one registered here.
    /// </summary>
    public void Adopt(uint worker)
    {
        if (store.Workers.TryGet(worker, out Worker w)) ArmLeaseTimer(w.ExpiresAtTicks);
    }

    /// <summary>Stops the lease timer.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0) return;
        lock (timerLock) leaseTimer?.Dispose();
    }

    private bool Renew(uint worker, out WorkerState state)
    {
        long now = store.NowTicks;
        if (!store.Workers.TryTouch(worker, now, out Worker w, out _))
        {
            state = default;
            return false;
        }
        ArmLeaseTimer(w.ExpiresAtTicks);
        state = w.ToState(now);
        return true;
    }

    /// <summary>Makes sure the lease timer fires no later than <paramref name="expiresAtTicks"/>.</summary>
    private void ArmLeaseTimer(long expiresAtTicks)
    {
        // Every stamped push renews a lease and lands here; a renewal only moves an expiry later, so almost always
        // the timer is already due sooner and the lock is not taken.
        if (expiresAtTicks >= Interlocked.Read(ref leaseTimerDueTicks)) return;
        lock (timerLock)
        {
            if (expiresAtTicks >= leaseTimerDueTicks || Volatile.Read(ref disposed) != 0) return;
            Interlocked.Exchange(ref leaseTimerDueTicks, expiresAtTicks);
            TimeSpan due = TimeSpan.FromTicks(Math.Max(0, expiresAtTicks - store.NowTicks));
            leaseTimer ??= store.TimeProvider.CreateTimer(static s => ((LocalWorkerDirectory)s!).SweepLeases(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            leaseTimer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Expires the leases that ended; waiting pulls re-check, since fewer workers count.</summary>
    private void SweepLeases()
    {
        if (Volatile.Read(ref disposed) != 0) return;
        // The timer is spent: forget its due time before the scan, so a worker registered during the scan arms
        // the timer itself instead of being missed by both.
        lock (timerLock) Interlocked.Exchange(ref leaseTimerDueTicks, long.MaxValue);
        bool changed = store.Workers.Sweep(store.NowTicks, out long next);
        if (next != long.MaxValue) ArmLeaseTimer(next);
        if (changed) store.ReleaseAllTables();
    }
}
