using System.Buffers;
using System.Net.Http.Headers;
using Microsoft.Extensions.Logging;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;
using ParamDb.Storage.Transfer;

namespace ParamDb.Cluster.Replication;

/// <summary>
/// What one backup still has to receive from this primary, and the loop that sends it, one batch at a time, in
/// order (docs/replication.md). Keys touched while a batch is on the wire wait in <see cref="_pending"/> and go in
/// the next one, read then: the newest records, once each. Before the first batch, and whenever the backup comes
/// to hold more of this node's arcs, it sends those arcs whole (a resync). A batch that fails is sent again, its
/// keys read afresh, until it is written or the backup is declared down; then nothing is kept for it, and it is
/// resynced when it returns.
/// </summary>
internal sealed partial class BackupStream : IAsyncDisposable
{
    /// <summary>Most bytes of batches in one request: far below the default request limit (64 MiB).</summary>
    private const int MaxRequestBytes = 8 << 20;

    /// <summary>
    /// Longest a batch waits for pushes being applied (<see cref="ApplyBarrier"/>): a 4 MiB push applies in ~5 ms
    /// on this machine's loaded cores; one held up longer (a checkpoint's start) is not waited for.
    /// </summary>
    private static readonly TimeSpan MaxGroupWait = TimeSpan.FromMilliseconds(20);

    /// <summary>How long a batch lingers for more pushes when several workers push at once (<see cref="GroupAsync"/>).</summary>
    private static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(5);

    private readonly Replicator _owner;
    private readonly Dictionary<TableHandle, Pending> _pending = new(ReferenceEqualityComparer.Instance);
    private readonly List<TaskCompletionSource> _sending = [];
    private readonly HashSet<ulong> _synced = [];   // arcs sent whole since the backup was last seen down; locked itself
    private readonly CopyProgress _joinCopy = new(Failpoints.CatchUp);   // a joining backup's catch-up
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private TaskCompletionSource? _open;
    private ReplicaPlan? _plan;
    private int _index;
    private int _failures;
    private long _pushesAtTake;   // the owner's PushesApplied when the last batch was taken
    private long _progressLogged = Environment.TickCount64;   // a backup just declared joining is not reported at once
    private bool _catchingUp;     // a joining backup whose arcs are not all sent yet: not waited for (owner's lock)

    public BackupStream(Replicator owner, string nodeId)
    {
        _owner = owner;
        NodeId = nodeId;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The backup's node id.</summary>
    public string NodeId { get; }

    /// <summary>
    /// A new epoch: the backup's index in it, and what it holds (caller holds the owner's lock). Keys of arcs this
    /// node no longer serves for it are dropped, and every push still waiting here fails: its rows may never reach
    /// the arc's new primary, so it must not be acknowledged.
    /// </summary>
    public void Replan(ReplicaPlan plan, int index)
    {
        // A backup that is down, or back from being down (joining), may lack anything sent before: every arc goes
        // whole again. Cleared here, on every epoch, not when the loop next runs: a down epoch followed at once by
        // a joining one would otherwise leave the loop seeing the second only, and the backup counted caught up.
        NodeState now = plan.Ring.StateOf(index);
        if (now == NodeState.Down || (now == NodeState.Joining && (_plan is null || _plan.Ring.NodeIndex(NodeId) is var was && (was < 0 || _plan.Ring.StateOf(was) != NodeState.Joining))))
        {
            // Down: the pushes already waiting for it go on now, not when the loop next looks: it may be backing off
            // after failed sends for up to a second (the kill loop: the first push on a dead leader's arcs was
            // acknowledged 0.5 s after the node was declared down).
            if (now == NodeState.Down) ReleaseDown();
            else ForgetSynced();
            // A joining backup serves nothing until every primary of its arcs reports it caught up, so pushes need not
            // wait for it while its arcs are on their way (CatchUpAsync): they go on at the rate they had.
            _catchingUp = now == NodeState.Joining;
        }
        else if (now == NodeState.Up)
        {
            _catchingUp = false;
        }
        _plan = plan;
        _index = index;
        var held = new HashSet<ulong>(plan.HeldBy[index]);
        // An arc it no longer holds gets no more batches: should it hold it again (a stand-in whose arc's chain was
        // whole again for a while), it is sent whole again.
        lock (_synced) _synced.IntersectWith(held);
        ReplanStandIn(plan, index, held);
        bool dropped = false;
        foreach (Pending pending in _pending.Values)
        {
            foreach (ulong token in pending.Keys.Keys.ToArray())
            {
                if (held.Contains(token)) continue;
                pending.Keys.Remove(token);
                dropped = true;
            }
        }
        if (dropped) FailAll();
        Wake();
    }

    /// <summary>Declared down: nothing is waited for or kept, and it gets every arc whole when it returns (caller holds the owner's lock).</summary>
    private void ReleaseDown()
    {
        _pending.Clear();
        _deferred.Clear();
        CompleteAll();
        ForgetSynced();
    }

    /// <summary>The backup may lack anything sent before (down, or back from down): every arc goes whole again.</summary>
    private void ForgetSynced()
    {
        lock (_synced)
        {
            _synced.Clear();
            _joinCopy.Copied.Clear();
            _standInCopy.Copied.Clear();
        }
    }

    /// <summary>Fails every waiting confirmation (caller holds the owner's lock).</summary>
    private void FailAll()
    {
        var moved = new ReplicaMovedException(NodeId);
        foreach (TaskCompletionSource waiting in _sending) waiting.TrySetException(moved);
        _sending.Clear();
        _open?.TrySetException(moved);
        _open = null;
    }

    /// <summary>Whether every arc this node serves for the backup was sent whole, and nothing waits: what a joining backup needs to be counted caught up.</summary>
    public bool CaughtUp(ReplicaPlan plan)
    {
        if (!ReferenceEquals(plan, _plan) || _catchingUp || _pending.Count > 0 || _sending.Count > 0 || _open is not null) return false;
        lock (_synced) return plan.HeldBy[_index].TrueForAll(_synced.Contains);
    }

    /// <summary>
    /// Why a joining backup is not counted caught up yet, for the log (caller holds the owner's lock): a node that
    /// stays joining says which primary holds it back, and with what.
    /// </summary>
    public string Progress(ReplicaPlan plan)
    {
        int unsynced;
        lock (_synced) unsynced = plan.HeldBy[_index].Count(t => !_synced.Contains(t));
        int keys = 0;
        foreach (Pending pending in _pending.Values)
            foreach (HashSet<ulong> set in pending.Keys.Values) keys += set.Count;
        return $"{unsynced} of {plan.HeldBy[_index].Count} arcs still to send whole, {keys} keys of {_pending.Count} tables waiting, {_sending.Count} batches on the wire, {_failures} failed tries in a row{(ReferenceEquals(plan, _plan) ? "" : ", a newer epoch not yet applied")}";
    }

    /// <summary>At most one progress line per backup every 10 s.</summary>
    public bool DueForProgressLog()
    {
        long now = Environment.TickCount64;
        if (now - _progressLogged < 10_000) return false;
        _progressLogged = now;
        return true;
    }

    /// <summary>Notes a key for the next batch (caller holds the owner's lock).</summary>
    public void Mark(TableHandle table, ulong token, ulong key)
    {
        Pending pending = _fresh.Contains(token) ? DeferredOf(table) : PendingOf(table);
        if (!pending.Keys.TryGetValue(token, out HashSet<ulong>? keys)) pending.Keys[token] = keys = [];
        keys.Add(key);
        Wake();
    }

    /// <summary>Notes that the table's clocks moved on every arc (caller holds the owner's lock).</summary>
    public void MarkClocked(TableHandle table)
    {
        PendingOf(table).Clocked = true;
        Wake();
    }

    /// <summary>
    /// Completes once everything noted so far has been written by the backup, or the backup is declared down
    /// (caller holds the owner's lock).
    /// </summary>
    public Task Confirmation()
    {
        // A down backup is not waited for, nor a joining one until its arcs are all sent (then every push since is
        // waited for, and every push before had its keys noted for the batches after the copy, which it must have
        // written before it counts as caught up).
        if (_plan is null || _plan.Down[_index] || _catchingUp) return Task.CompletedTask;
        if (_pending.Count > 0) return (_open ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        // Nothing pending: every key noted so far went in the batches on the wire (the last holds the newest).
        return _sending.Count > 0 ? _sending[^1].Task : _open?.Task ?? Task.CompletedTask;
    }

    private Pending DeferredOf(TableHandle table)
    {
        if (!_deferred.TryGetValue(table, out Pending? pending)) _deferred[table] = pending = new Pending();
        return pending;
    }

    private Pending PendingOf(TableHandle table)
    {
        if (!_pending.TryGetValue(table, out Pending? pending)) _pending[table] = pending = new Pending();
        return pending;
    }

    private void Wake()
    {
        if (_wake.CurrentCount == 0) _wake.Release();
    }

    private async Task RunAsync()
    {
        try
        {
            while (true)
            {
                await _wake.WaitAsync(_stop.Token).ConfigureAwait(false);
                while (!_stop.IsCancellationRequested && await RoundAsync().ConfigureAwait(false) is var more && more)
                {
                    if (_failures > 0) await Task.Delay(Backoff(), _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private TimeSpan Backoff() => TimeSpan.FromMilliseconds(Math.Min(1000, 25 << Math.Min(_failures, 6)));

    /// <summary>One round: a resync if one is due, then one batch per table with pending keys. False once idle.</summary>
    private async Task<bool> RoundAsync()
    {
        ReplicaPlan plan;
        int index;
        TableHandle[] tables;
        lock (_owner.Sync)
        {
            if (_plan is null) return false;
            (plan, index) = (_plan, _index);
            if (plan.Down[index])
            {
                ReleaseDown();   // what a failed send put back since the epoch that declared it down
                return false;
            }
        }
        List<ulong> missing;
        // Arcs it stands in for and is not counted caught up on go whole beside this loop (StandInCopyAsync).
        lock (_owner.Sync)
        {
            lock (_synced) missing = plan.HeldBy[index].FindAll(t => !_synced.Contains(t) && !plan.Fresh[index].Contains(t) && !StandInCopying(t));
        }
        StartStandInCopy(plan, index);
        if (missing.Count > 0)
        {
            bool joining = plan.Ring.StateOf(index) == NodeState.Joining;
            if (!await (joining ? CatchUpAsync(missing, _joinCopy) : ResyncAsync(missing)).ConfigureAwait(false)) return Failed();
            lock (_owner.Sync)
            {
                lock (_synced)
                {
                    _synced.UnionWith(missing);
                    // From here on pushes wait for it; unless the ring gave it more arcs meanwhile, sent next round.
                    if (_plan is { } now && now.HeldBy[_index].TrueForAll(_synced.Contains)) _catchingUp = false;
                }
            }
        }
        await GroupAsync().ConfigureAwait(false);
        lock (_owner.Sync)
        {
            if (_pending.Count == 0)
            {
                CompleteAll();
                _failures = 0;
                return false;
            }
            // The batch gets its completion even if no push waits on it yet: a push whose keys it took may ask for
            // its confirmation only now, and must then wait for this batch (Confirmation), not pass because
            // nothing is pending.
            _sending.Add(_open ?? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            _open = null;
            tables = [.. _pending.Keys];
            _pushesAtTake = _owner.PushesApplied;
        }
        foreach (TableHandle table in tables)
            if (!await SendTableAsync(table).ConfigureAwait(false)) return Failed();
        lock (_owner.Sync)
        {
            foreach (TaskCompletionSource done in _sending) done.TrySetResult();
            _sending.Clear();
            if (_pending.Count == 0) CompleteAll();
        }
        _failures = 0;
        return true;
    }

    /// <summary>
    /// Group commit: lets the pushes of other workers join the batch about to be taken. When more than one push
    /// went in the last batch (workers push at once), it first lingers <see cref="Linger"/> for pushes still on
    /// their way in; then it waits for the pushes being applied now (<see cref="ApplyBarrier"/>). A lone worker's
    /// push is sent at once. Measured, three nodes at R = 2 with four workers pushing the same 4,096 rows
    /// (docs/benchmarks.md): replicated ÷ pushed bytes 0.57 with neither, 0.50 waiting for applies, 0.35 with both,
    /// and the pushes ran faster, not slower, since the backups wrote fewer rows.
    /// </summary>
    private async Task GroupAsync()
    {
        try
        {
            if (_owner.PushesApplied - _pushesAtTake > 1) await Task.Delay(Linger, _stop.Token).ConfigureAwait(false);
            await _owner.Applies.DrainAsync().WaitAsync(MaxGroupWait, _stop.Token).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A push held up in the store (a checkpoint's start) goes in the next batch.
        }
    }

    private bool Failed()
    {
        _failures++;
        return true;
    }

    /// <summary>Completes every confirmation (caller holds the owner's lock).</summary>
    private void CompleteAll()
    {
        foreach (TaskCompletionSource done in _sending) done.TrySetResult();
        _sending.Clear();
        _open?.TrySetResult();
        _open = null;
    }

    /// <summary>Reads and sends the table's pending keys (and clocks) as one request; on failure they are noted again.</summary>
    private async Task<bool> SendTableAsync(TableHandle table)
    {
        if (!_owner.Store.TryGetTable(table.Name, out TableHandle? live) || !ReferenceEquals(live, table))
        {
            // Deleted (and perhaps created again: another table) since its keys were noted: nothing of it to send.
            // Kept, its keys could still be read and went to a backup that no longer had the table, 404, again and
            // again, and every other table's batches waited behind them: pushes that backup backs up were not
            // confirmed again (ATableDeletedWhileItsRowsWaitForABackup..., caught in CI).
            lock (_owner.Sync) _pending.Remove(table);
            return true;
        }
        // Sized before the read so it never grows: an ArrayBufferWriter doubling its way to a 4 MiB batch made
        // ~8 MiB of large-object garbage per batch, and the collections took a fifth of a primary's CPU.
        using var buffer = new PooledArrayWriter(0);
        List<KeyValuePair<ulong, ulong[]>> taken = [];
        try
        {
            _owner.Store.HoldClockedPushes(table, () =>
            {
                // The arcs held now, not when the round began: Replan has dropped the keys of arcs that moved since,
                // and a clock-only batch for such an arc, taken by the older plan, gave a backup that had not yet
                // switched epochs the clock of a push without its rows; the push's retry then skipped there, and
                // was lost (the kill loop, round 81 of 300, after a group commit's wait widened the gap).
                lock (_owner.Sync) taken = _plan is { } now && !now.Down[_index] ? Take(table, now.HeldBy[_index]) : [];
                long size = 0;
                foreach (var (_, keys) in taken) size += _owner.Store.RecordsSize(table, keys.Length);
                buffer.GetSpan((int)Math.Min(size, Array.MaxLength));
                foreach (var (token, keys) in taken) _owner.Store.ReadRecords(table, token, keys, buffer);
                return 0;
            });
        }
        catch (Exception e) when (e is ObjectDisposedException or KeyNotFoundException)
        {
            return true;   // the table was deleted: nothing of it to replicate
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // The store's ranges are not yet the ring's (they follow it off the Raft thread): again shortly.
            Requeue(table, taken);
            _owner.Logger.ReplicationDeferred(NodeId, table.Name, e.Message);
            return false;
        }
        if (taken.Count == 0) return true;
        if (await PostAsync(table, buffer.WrittenMemory).ConfigureAwait(false))
        {
            _owner.CountSent(buffer.WrittenCount, resync: false);
            return true;
        }
        Requeue(table, taken);
        return false;
    }

    /// <summary>The table's pending keys by arc, ascending, plus every held arc's clock alone if a clocked push ran (caller holds the owner's lock).</summary>
    private List<KeyValuePair<ulong, ulong[]>> Take(TableHandle table, List<ulong> held)
    {
        if (!_pending.Remove(table, out Pending? pending)) return [];
        var taken = new List<KeyValuePair<ulong, ulong[]>>(pending.Keys.Count);
        foreach (var (token, keys) in pending.Keys)
        {
            ulong[] sorted = [.. keys];
            Array.Sort(sorted);
            taken.Add(new(token, sorted));
        }
        if (pending.Clocked)
        {
            foreach (ulong token in held)
                if (!pending.Keys.ContainsKey(token)) taken.Add(new(token, []));
        }
        return taken;
    }

    private void Requeue(TableHandle table, List<KeyValuePair<ulong, ulong[]>> taken)
    {
        lock (_owner.Sync)
        {
            Pending pending = PendingOf(table);
            var held = _plan is { } plan ? new HashSet<ulong>(plan.HeldBy[_index]) : [];
            bool dropped = false;
            foreach (var (token, keys) in taken)
            {
                if (!held.Contains(token))
                {
                    dropped = true;   // the arc moved while its batch failed (see Replan)
                    continue;
                }
                if (keys.Length == 0) pending.Clocked = true;
                if (!pending.Keys.TryGetValue(token, out HashSet<ulong>? set)) pending.Keys[token] = set = [];
                set.UnionWith(keys);
            }
            if (dropped) FailAll();
        }
    }

    /// <summary>Sends record batches to the backup's records route; true once it answered that they are durable.</summary>
    private async Task<bool> PostAsync(TableHandle table, ReadOnlyMemory<byte> batches)
    {
        string? http = _owner.Member.Manager.State.Nodes.TryGetValue(NodeId, out var info) ? info.Http : null;
        if (http is null) return false;
        await Failpoints.HitAsync(Failpoints.ReplicationSend).ConfigureAwait(false);
        var content = new ReadOnlyMemoryContent(batches);
        content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.Records);
        try
        {
            using HttpResponseMessage reply = await _owner.Member.Peers.SendAsync(HttpMethod.Post, http,
                $"/v1/tables/{Uri.EscapeDataString(table.Name)}/records", content, _stop.Token).ConfigureAwait(false);
            if (reply.IsSuccessStatusCode) return true;
            string body = await reply.Content.ReadAsStringAsync(_stop.Token).ConfigureAwait(false);
            if (_failures == 0) _owner.Logger.ReplicationRefused(NodeId, table.Name, (int)reply.StatusCode, body);
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !_stop.IsCancellationRequested)
        {
            if (_failures == 0) _owner.Logger.ReplicationFailed(NodeId, table.Name, e.Message);
            return false;
        }
    }

    /// <summary>Stops the loop; whoever still waits is released (the node is closing: its replies fail anyway).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        lock (_owner.Sync) CompleteAll();
        Task? standIn;
        lock (_owner.Sync) standIn = _standInTask;
        if (standIn is not null) await standIn.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
        _wake.Dispose();
    }

    /// <summary>A table's keys waiting for the next batch, by arc.</summary>
    private sealed class Pending
    {
        public Dictionary<ulong, HashSet<ulong>> Keys { get; } = [];

        public bool Clocked { get; set; }
    }
}

/// <summary>A push's rows were noted for a backup of an arc whose primary changed before they were sent.</summary>
internal sealed class ReplicaMovedException(string backup)
    : Exception($"The ring changed while this push's rows were on their way to backup '{backup}': the arc has another primary now.");
