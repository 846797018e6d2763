using ParamDb.Protocol.Cluster;
using ParamDb.Storage;

namespace ParamDb.Cluster.Replication;

/// <summary>
/// Re-replication (docs/replication.md): arcs this backup <b>stands in</b> for, since their chain lost a node, are
/// sent whole beside the pushes, as to a joining node, while the loop keeps sending the batches of every other arc it
/// holds, so those pushes are acknowledged at their usual pace. Keys that pushes touch in a fresh arc wait in
/// <see cref="_deferred"/>, not waited for, and go once its copy is written, read then; once those are written
/// too the arc counts as sent whole, and the heartbeat reports the backup caught up, so the server manager may
/// let it serve the arc should the arc's chain fail.
/// </summary>
internal sealed partial class BackupStream
{
    // Arcs it stands in for whose copy is not written yet (owner's lock): their keys wait in _deferred.
    private readonly HashSet<ulong> _fresh = [];
    private readonly Dictionary<TableHandle, Pending> _deferred = new(ReferenceEqualityComparer.Instance);
    private readonly CopyProgress _standInCopy = new(Failpoints.StandIn);
    private Task? _standInTask;       // owner's lock
    private HashSet<ulong> _standInCopying = [];   // the arcs _standInTask sends, until it ends (owner's lock)
    private int _standInGeneration;   // bumped when the backup may have lost what it was sent (owner's lock)

    /// <summary>A new epoch's fresh arcs for the backup (caller holds the owner's lock; <paramref name="held"/> is what it holds now).</summary>
    private void ReplanStandIn(ReplicaPlan plan, int index, HashSet<ulong> held)
    {
        if (plan.Ring.StateOf(index) != NodeState.Up) _standInGeneration++;   // a copy under way may be lost: its end is not counted
        _fresh.Clear();
        lock (_synced)
        {
            foreach (ulong token in plan.Fresh[index])
                if (!_synced.Contains(token)) _fresh.Add(token);
        }
        // Keys held back for an arc no longer fresh: dropped if the backup no longer holds it, else sent after the
        // arc goes whole in the loop (it is held, not sent whole, and not fresh: ResyncAsync).
        MoveDeferred(token => !_fresh.Contains(token), token => held.Contains(token));
    }

    /// <summary>Moves the deferred keys of arcs <paramref name="which"/> picks into the next batch (or drops them where <paramref name="keep"/> says no).</summary>
    private void MoveDeferred(Func<ulong, bool> which, Func<ulong, bool> keep)
    {
        foreach (var (table, deferred) in _deferred.ToArray())
        {
            foreach (var (token, keys) in deferred.Keys.ToArray())
            {
                if (!which(token)) continue;
                deferred.Keys.Remove(token);
                if (!keep(token)) continue;
                Pending pending = PendingOf(table);
                if (!pending.Keys.TryGetValue(token, out HashSet<ulong>? set)) pending.Keys[token] = set = [];
                set.UnionWith(keys);
            }
            if (deferred.Keys.Count == 0) _deferred.Remove(table);
        }
    }

    /// <summary>Starts sending the fresh arcs whole, unless a copy is under way or there are none.</summary>
    private void StartStandInCopy(ReplicaPlan plan, int index)
    {
        lock (_owner.Sync)
        {
            if (_standInTask is { IsCompleted: false } || _fresh.Count == 0 || !ReferenceEquals(plan, _plan) || plan.Down[index]) return;
            List<ulong> tokens = [.. _fresh];
            tokens.Sort();
            int generation = _standInGeneration;
            _standInCopying = [.. tokens];
            _standInTask = Task.Run(async () =>
            {
                try
                {
                    await StandInCopyAsync(tokens, generation).ConfigureAwait(false);
                }
                finally
                {
                    lock (_owner.Sync) _standInCopying = [];
                }
            });
        }
    }

    /// <summary>
    /// Whether a stand-in copy under way sends <paramref name="token"/> (caller holds the owner's lock): such an arc
    /// is not sent whole by the loop meanwhile (were it no longer fresh), so the copy's older rows never land after it.
    /// </summary>
    private bool StandInCopying(ulong token) => _standInCopying.Contains(token);

    private async Task StandInCopyAsync(List<ulong> tokens, int generation)
    {
        for (int failures = 0; !_stop.IsCancellationRequested; failures++)
        {
            lock (_owner.Sync)
            {
                if (generation != _standInGeneration) return;
            }
            try
            {
                if (await CatchUpAsync(tokens, _standInCopy).ConfigureAwait(false) && await FlushStandInAsync(tokens, generation).ConfigureAwait(false))
                {
                    Wake();   // arcs that became fresh meanwhile go next
                    return;
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                _owner.Logger.ReplicationDeferred(NodeId, "(stand-in copy)", e.Message);   // tried again
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 25 << Math.Min(failures, 6))), _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// The copy of <paramref name="tokens"/> is written: the keys pushes touched meanwhile go in the next batch, with
    /// every held arc's clock (the copy's were read when it began), and pushes wait for the backup there from now on.
    /// Once that batch is written, the arcs count as sent whole. False if it failed, or the backup was lost meanwhile.
    /// </summary>
    private async Task<bool> FlushStandInAsync(List<ulong> tokens, int generation)
    {
        Task confirmed;
        List<ulong> done;
        lock (_owner.Sync)
        {
            if (generation != _standInGeneration || _plan is null) return false;
            done = tokens.FindAll(_fresh.Contains);
            var flushed = new HashSet<ulong>(done);
            MoveDeferred(flushed.Contains, static _ => true);
            _fresh.ExceptWith(done);
            foreach (TableHandle table in _owner.Store.ListTables()) PendingOf(table).Clocked = true;
            confirmed = Confirmation();
            Wake();
        }
        try
        {
            await confirmed.WaitAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (ReplicaMovedException)
        {
            lock (_owner.Sync)
            {
                // Sent again whole, those it still stands in for (its keys wait again from here).
                if (generation == _standInGeneration && _plan is { } plan)
                    foreach (ulong token in done) if (plan.Fresh[_index].Contains(token)) _fresh.Add(token);
            }
            return false;
        }
        lock (_owner.Sync)
        {
            if (generation != _standInGeneration) return false;
            lock (_synced) _synced.UnionWith(done);
        }
        return true;
    }

    /// <summary>
    /// Whether the backup is up, stands in for arcs of this node not yet counted caught up, and has been sent all of
    /// them whole, and every arc it holds (caller holds the owner's lock): what the heartbeat reports so the
    /// server manager counts it caught up (<see cref="Commands.MarkStandIns"/>).
    /// </summary>
    public bool CaughtUpAsStandIn(ReplicaPlan plan)
    {
        if (!ReferenceEquals(plan, _plan) || plan.Fresh[_index].Count == 0 || _fresh.Count > 0) return false;
        lock (_synced) return plan.HeldBy[_index].TrueForAll(_synced.Contains);
    }
}
