using Microsoft.Extensions.Logging;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage.Local;

/// <summary>
/// The worker directory of a single node: assigns worker ids from the store's next free id and keeps the leases.
/// A lease lives only in memory: workers recovered with the store start a fresh lease when the directory is
/// created (a worker that is still running keeps it with its next request; one that is gone stops counting one
/// lease later). Expiry runs on one timer, due at the earliest lease end.
/// </summary>
public sealed class LocalWorkerDirectory : IWorkerDirectory, IDisposable
{
    private readonly ParamStore _store;
    private readonly ILogger _logger;
    private readonly Lock _timerLock = new();
    private readonly Lock _changes = new();
    private ITimer? _leaseTimer;
    private long _leaseTimerDueTicks = long.MaxValue;
    private int _disposed;

    /// <summary>How long a lease that ended without its worker being removed waits before it is reported again.</summary>
    private static readonly TimeSpan ReportAgain = TimeSpan.FromSeconds(1);

    private readonly bool _decidesExpiry;

    /// <summary>Keeps the leases of <paramref name="store"/>'s workers, starting with those it recovered.</summary>
    /// <param name="store">The node's store.</param>
    /// <param name="logger">Receives registrations and removals.</param>
    /// <param name="decidesExpiry">
    /// True on a single node: a lease that ends expires the worker here. False in a cluster: the lease is only
    /// reported (<see cref="LeaseEnded"/>), and the manager's leader commits the expiry for every node.
    /// </param>
    public LocalWorkerDirectory(ParamStore store, ILogger logger, bool decidesExpiry = true)
    {
        _decidesExpiry = decidesExpiry;
        _store = store;
        _logger = logger;
        long firstExpiry = long.MaxValue;
        foreach (Worker w in store.Workers.All) firstExpiry = Math.Min(firstExpiry, w.ExpiresAtTicks);
        if (firstExpiry != long.MaxValue) ArmLeaseTimer(firstExpiry);
    }

    /// <inheritdoc />
    public ValueTask<WorkerState> RegisterAsync(string name, IReadOnlyList<string> tables, int leaseMs, CancellationToken cancellationToken)
    {
        WorkerState state;
        lock (_changes) state = _store.AddWorker(_store.NextWorkerId, name, tables, leaseMs);
        if (_store.Workers.TryGet(state.Id, out Worker added)) ArmLeaseTimer(added.ExpiresAtTicks);
        _logger.WorkerRegistered(state.Id, name, leaseMs);
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
        long now = _store.NowTicks;
        Worker[] all = _store.Workers.All;
        var states = new WorkerState[all.Length];
        for (int i = 0; i < all.Length; i++) states[i] = all[i].ToState(now);
        return states;
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(uint worker, CancellationToken cancellationToken)
    {
        bool removed;
        lock (_changes) removed = _store.DropWorker(worker);
        if (removed) _logger.WorkerRemoved(worker);
        return new(removed);
    }

    /// <summary>
    /// Starts keeping the lease of a worker someone else added to the store (a cluster's manager, through its
    /// mirror): from now, like one registered here.
    /// </summary>
    public void Adopt(uint worker)
    {
        if (_store.Workers.TryGet(worker, out Worker w)) ArmLeaseTimer(w.ExpiresAtTicks);
    }

    /// <summary>
    /// Raised, when this directory does not decide expiry, with each worker whose lease ended; raised again every
    /// second while the worker is still registered.
    /// </summary>
    public event Action<uint>? LeaseEnded;

    /// <summary>Stops the lease timer.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_timerLock) _leaseTimer?.Dispose();
    }

    private bool Renew(uint worker, out WorkerState state)
    {
        long now = _store.NowTicks;
        if (!_store.Workers.TryTouch(worker, now, out Worker w, out _))
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
        if (expiresAtTicks >= Interlocked.Read(ref _leaseTimerDueTicks)) return;
        lock (_timerLock)
        {
            if (expiresAtTicks >= _leaseTimerDueTicks || Volatile.Read(ref _disposed) != 0) return;
            Interlocked.Exchange(ref _leaseTimerDueTicks, expiresAtTicks);
            TimeSpan due = TimeSpan.FromTicks(Math.Max(0, expiresAtTicks - _store.NowTicks));
            _leaseTimer ??= _store.TimeProvider.CreateTimer(static s => ((LocalWorkerDirectory)s!).SweepLeases(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _leaseTimer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Expires the leases that ended; waiting pulls re-check, since fewer workers count.</summary>
    private void SweepLeases()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        // The timer is spent: forget its due time before the scan, so a worker registered during the scan arms
        // the timer itself instead of being missed by both.
        lock (_timerLock) Interlocked.Exchange(ref _leaseTimerDueTicks, long.MaxValue);
        if (!_decidesExpiry)
        {
            List<uint> due = _store.Workers.Due(_store.NowTicks, out long nextDue);
            if (due.Count > 0) nextDue = Math.Min(nextDue, _store.NowTicks + ReportAgain.Ticks);
            if (nextDue != long.MaxValue) ArmLeaseTimer(nextDue);
            foreach (uint worker in due) LeaseEnded?.Invoke(worker);
            return;
        }
        bool changed = _store.Workers.Sweep(_store.NowTicks, out long next);
        if (next != long.MaxValue) ArmLeaseTimer(next);
        if (changed) _store.ReleaseAllTables();
    }
}
