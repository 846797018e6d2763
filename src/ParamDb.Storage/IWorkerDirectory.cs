namespace ParamDb.Storage;

/// <summary>
/// Registered workers and their leases (docs/consistency.md): who counts for consistent pulls. Locally
/// <see cref="Local.LocalWorkerDirectory"/> assigns ids and keeps the leases; in a cluster registrations and
/// expiries go through the server manager, so every node counts the same workers.
/// </summary>
/// <remarks>Concurrency: every member may be called from many threads; <see cref="Touch"/> is on the data path
/// (every stamped push and pull) and takes no lock in the common case.</remarks>
public interface IWorkerDirectory
{
    /// <summary>Registers a worker; its id is never reused. Durable when the task completes.</summary>
    /// <param name="name">A name for people, 1…128 characters.</param>
    /// <param name="tables">Tables the worker counts for (validated names); empty for every table.</param>
    /// <param name="leaseMs">Lease, <see cref="ParamDb.Protocol.WorkerLimits.MinLeaseMs"/>…<see cref="ParamDb.Protocol.WorkerLimits.MaxLeaseMs"/>.</param>
    /// <param name="cancellationToken">Stops waiting; the registration may still happen.</param>
    ValueTask<WorkerState> RegisterAsync(string name, IReadOnlyList<string> tables, int leaseMs, CancellationToken cancellationToken);

    /// <summary>Renews a worker's lease (a heartbeat); null when no worker has that id.</summary>
    ValueTask<WorkerState?> HeartbeatAsync(uint worker, CancellationToken cancellationToken);

    /// <summary>Renews a worker's lease on a data request it makes; false when no worker has that id.</summary>
    bool Touch(uint worker);

    /// <summary>Every registered worker, by id.</summary>
    IReadOnlyList<WorkerState> List();

    /// <summary>
    /// Removes a worker: it stops counting at once (waiting pulls re-check), and a push stamped with its id is
    /// refused from then on. False when no worker has that id.
    /// </summary>
    ValueTask<bool> RemoveAsync(uint worker, CancellationToken cancellationToken);
}
