using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Metadata;
using ParamDb.Storage;

namespace ParamDb.Cluster.Directories;

/// <summary>
/// Keeps this node's store in step with the server manager's tables and workers: every node holds every table
/// (its own ranges of it) and counts every worker, under the ids the manager assigned. Runs on each state change
/// and once when the store opens, comparing the two and adding or dropping what differs, so it is idempotent and
/// a node that was down catches up in one pass.
/// </summary>
/// <param name="logger">Receives what the mirror adds and drops.</param>
/// <param name="workerAdded">Told of every worker the mirror adds, so its lease is kept from then on.</param>
public sealed class MetadataMirror(ILogger logger, Action<uint>? workerAdded = null)
{
    private readonly Lock _sync = new();
    private ParamStore? _store;

    /// <summary>Mirrors into <paramref name="store"/> from now on, starting with <paramref name="state"/>.</summary>
    public void Attach(ParamStore store, ClusterState state)
    {
        lock (_sync)
        {
            _store = store;
            Reconcile(store, state);
        }
    }

    /// <summary>Stops mirroring (the store is closing).</summary>
    public void Detach()
    {
        lock (_sync) _store = null;
    }

    /// <summary>Brings the attached store (if any) to <paramref name="state"/>.</summary>
    public void OnStateChanged(ClusterState state)
    {
        lock (_sync)
        {
            if (_store is { } store) Reconcile(store, state);
        }
    }

    private void Reconcile(ParamStore store, ClusterState state)
    {
        if (!state.IsInitialized) return;
        foreach (TableHandle table in store.ListTables())
        {
            if (state.Tables.TryGetValue(table.Name, out TableEntry? entry) && entry.Id == table.Id) continue;
            store.DropTable(table.Id);
            logger.MirrorDroppedTable(table.Name, table.Id);
        }
        foreach (TableEntry entry in state.Tables.Values)
        {
            if (store.TryGetTable(entry.Name, out _)) continue;
            if (entry.Id < store.NextTableId)
            {
                // The store saw this id before: the table was deleted and the manager's log, replayed, adds it back
                // at its old id. Its rows are gone from the store for good, so the stale entry is skipped.
                continue;
            }
            store.AddTable(entry.Id, entry.Name, entry.Schema);
            logger.MirrorAddedTable(entry.Name, entry.Id);
        }
        foreach (uint worker in store.WorkerIds())
            if (!state.Workers.ContainsKey(worker)) store.DropWorker(worker);
        foreach (WorkerEntry entry in state.Workers.Values)
        {
            if (store.HasWorker(entry.Id) || entry.Id < store.NextWorkerId) continue;   // below: removed here before
            store.AddWorker(entry.Id, entry.Name, entry.Tables, entry.LeaseMs);
            workerAdded?.Invoke(entry.Id);
        }
    }
}
