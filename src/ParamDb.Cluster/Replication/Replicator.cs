using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;
using ParamDb.Storage.Transfer;

namespace ParamDb.Cluster.Replication;

/// <summary>
/// Replication after aggregation (docs/replication.md; the paper's §4.3). The store tells it of every push it
/// applies (<see cref="IPushTap"/>); it notes the touched keys for each backup of their arcs, and one
/// <see cref="BackupStream"/> per backup ships the <i>resulting</i> records in batches, so pushes that arrive while a
/// batch is on the wire fold into the next: W workers pushing the same keys cost one record each per batch, not W
/// rows. A push is acknowledged only once every backup that is not down has written the batch holding its rows to
/// its write-ahead log (<see cref="ConfirmAsync"/>).
/// </summary>
public sealed class Replicator : IPushTap, IAsyncDisposable
{
    /// <summary>How long a push waits for its backups before it is answered 503 (not acknowledged).</summary>
    public static readonly TimeSpan ConfirmTimeout = TimeSpan.FromSeconds(10);

    private readonly ClusterMember _member;
    private readonly ParamStore _store;
    private readonly ILogger _logger;
    private readonly Dictionary<string, BackupStream> _streams = new(StringComparer.Ordinal);
    private ReplicaPlan? _plan;
    private BackupStream?[] _byIndex = [];
    private bool _disposed;
    private long _pushedBytes, _replicatedBytes, _resyncedBytes, _pushesApplied;

    /// <summary>Replicates the pushes <paramref name="store"/> applies to their backups in <paramref name="member"/>'s ring.</summary>
    public Replicator(ClusterMember member, ParamStore store, ILogger logger)
    {
        _member = member;
        _store = store;
        _logger = logger;
        member.RingChanged += OnRingChanged;
        if (member.Ring is { } ring) OnRingChanged(ring);
        store.PushTap = this;
        member.CaughtUpReport = CaughtUpBackups;
    }

    /// <summary>Guards every stream's pending keys and confirmations; taken inside a push's clock lock, never around one.</summary>
    internal Lock Sync { get; } = new();

    internal ParamStore Store => _store;

    /// <summary>Pushes applied here with backups to ship them to, since the node started.</summary>
    internal long PushesApplied => Interlocked.Read(ref _pushesApplied);

    /// <summary>The pushes being applied now, which a batch about to be taken waits for (group commit).</summary>
    internal ApplyBarrier Applies { get; } = new();

    /// <summary>A push is about to be applied to the store: pass the result to <see cref="ExitApply"/> when it returns.</summary>
    public int EnterApply() => Applies.Enter();

    /// <summary>A push returned from the store (applied or refused).</summary>
    public void ExitApply(int generation) => Applies.Exit(generation);

    internal ClusterMember Member => _member;

    internal ILogger Logger => _logger;

    private void OnRingChanged(ClusterRing ring)
    {
        var plan = ReplicaPlan.Of(ring, _member.Identity.NodeId, _member.Manager.State);
        var byIndex = new BackupStream?[ring.NodeCount];
        List<BackupStream> gone = [];
        lock (Sync)
        {
            if (_disposed) return;
            for (int n = 0; n < ring.NodeCount; n++)
            {
                if (n == plan.Self || plan.HeldBy[n].Count == 0) continue;
                string id = ring.Nodes[n];
                if (!_streams.TryGetValue(id, out BackupStream? stream)) _streams[id] = stream = new BackupStream(this, id);
                byIndex[n] = stream;
            }
            foreach (var (id, stream) in _streams)
                if (ring.NodeIndex(id) is var n && (n < 0 || byIndex[n] is null)) gone.Add(stream);
            foreach (BackupStream stream in gone) _streams.Remove(stream.NodeId);
            _byIndex = byIndex;
            Volatile.Write(ref _plan, plan);
            foreach (BackupStream stream in _streams.Values) stream.Replan(plan, ring.NodeIndex(stream.NodeId));
        }
        foreach (BackupStream stream in gone) _ = stream.DisposeAsync().AsTask();
    }

    /// <inheritdoc />
    public void Applied(TableHandle table, ReadOnlySpan<ulong> keys, bool clocked)
    {
        if (Volatile.Read(ref _plan) is not { Replicates: true }) return;
        Interlocked.Add(ref _pushedBytes, (long)keys.Length * table.Dim * sizeof(float));
        Interlocked.Increment(ref _pushesApplied);
        lock (Sync)
        {
            if (_plan is not { Replicates: true } plan) return;
            int range = -1;
            ulong block = ulong.MaxValue;
            foreach (ulong key in keys) MarkInBlock(plan, table, key, ref block, ref range);
            if (clocked) MarkClocked(table);
        }
    }

    /// <inheritdoc />
    public void AppliedRange(TableHandle table, ulong first, int count, bool clocked)
    {
        if (Volatile.Read(ref _plan) is not { Replicates: true }) return;
        Interlocked.Add(ref _pushedBytes, (long)count * table.Dim * sizeof(float));
        Interlocked.Increment(ref _pushesApplied);
        lock (Sync)
        {
            if (_plan is not { Replicates: true } plan) return;
            int range = -1;
            ulong block = ulong.MaxValue;
            for (int i = 0; i < count; i++) MarkInBlock(plan, table, first + (ulong)i, ref block, ref range);
            if (clocked) MarkClocked(table);
        }
    }

    /// <summary>
    /// <see cref="Mark"/> for keys in ascending order: the arc is looked up once per ring block (4,096 keys share
    /// one), carried in <paramref name="block"/> and <paramref name="range"/> from key to key.
    /// </summary>
    private void MarkInBlock(ReplicaPlan plan, TableHandle table, ulong key, ref ulong block, ref int range)
    {
        if (key >> Ring.BlockBits != block)
        {
            block = key >> Ring.BlockBits;
            range = plan.Ring.RangeOf(Ring.Position(table.RingHash, key));
        }
        Mark(plan, table, range, key);
    }

    /// <summary>Notes <paramref name="key"/> for every backup of its arc that is not down (caller holds <see cref="Sync"/>).</summary>
    private void Mark(ReplicaPlan plan, TableHandle table, int range, ulong key)
    {
        ReadOnlySpan<int> set = plan.Ring.ReplicasAt(range);
        if (set[0] != plan.Self) return;   // not this node's arc: the router sent it elsewhere
        ulong token = plan.Ring.Tokens[range];
        for (int b = 1; b < set.Length; b++)
            if (!plan.Down[set[b]] && _byIndex[set[b]] is { } stream) stream.Mark(table, token, key);
    }

    /// <summary>A clocked push advanced every served arc's clock: every backup gets the clocks of the arcs it holds.</summary>
    private void MarkClocked(TableHandle table)
    {
        foreach (BackupStream? stream in _byIndex) stream?.MarkClocked(table);
    }

    /// <summary>What this node has pushed and shipped so far (<c>GET /v1/health</c>).</summary>
    public ReplicationCounters Counters => new()
    {
        PushedBytes = Interlocked.Read(ref _pushedBytes),
        ReplicatedBytes = Interlocked.Read(ref _replicatedBytes),
        ResyncedBytes = Interlocked.Read(ref _resyncedBytes),
    };

    /// <summary>Counts bytes a backup wrote: after pushes, or in a resync.</summary>
    internal void CountSent(long bytes, bool resync) => Interlocked.Add(ref resync ? ref _resyncedBytes : ref _replicatedBytes, bytes);

    /// <summary>
    /// Null once every backup that is not down has written every push applied so far (the caller's included) to
    /// its log; the problem to answer otherwise (503: the push is not acknowledged, and is safe to retry with its
    /// worker clock). Returns at once on a node without backups.
    /// </summary>
    public async ValueTask<ProtocolError?> ConfirmAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _plan) is not { Replicates: true }) return null;
        List<(string Node, Task Confirmed)> waits = [];
        lock (Sync)
        {
            foreach (BackupStream stream in _streams.Values)
                if (stream.Confirmation() is { IsCompleted: false } task) waits.Add((stream.NodeId, task));
        }
        if (waits.Count == 0) return null;
        try
        {
            await Task.WhenAll(waits.ConvertAll(w => w.Confirmed)).WaitAsync(ConfirmTimeout, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (ReplicaMovedException e)
        {
            return new ProtocolError(503, ProblemCodes.Unavailable,
                $"{e.Message} This push was applied here but is not acknowledged; retry it (safe with a worker clock): it goes to the arc's new primary.");
        }
        catch (TimeoutException)
        {
            string late = string.Join(", ", waits.Where(w => !w.Confirmed.IsCompleted).Select(w => $"'{w.Node}'"));
            return new ProtocolError(503, ProblemCodes.Unavailable,
                $"Backup {late} did not confirm this push's rows within {ConfirmTimeout.TotalSeconds:F0} s, so it is not acknowledged (it was applied here and may be kept). A push with a worker clock is safe to retry.");
        }
    }

    /// <summary>
    /// The joining nodes this node has caught up on every arc it serves for them, in the current epoch, and the nodes
    /// that are up and that it has sent whole every arc they stand in for: what its heartbeat reports, so the leader
    /// counts a joining node up once all its primaries have, and a stand-in caught up on this node's arcs.
    /// </summary>
    public (ulong Epoch, List<string> CaughtUp) CaughtUpBackups()
    {
        lock (Sync)
        {
            if (_plan is not { } plan) return (0, []);
            var caughtUp = new List<string>();
            foreach (BackupStream stream in _streams.Values)
            {
                int index = plan.Ring.NodeIndex(stream.NodeId);
                if (index < 0) continue;
                if (plan.Ring.StateOf(index) == NodeState.Up)
                {
                    if (stream.CaughtUpAsStandIn(plan)) caughtUp.Add(stream.NodeId);
                    continue;
                }
                if (plan.Ring.StateOf(index) != NodeState.Joining) continue;
                if (stream.CaughtUp(plan)) caughtUp.Add(stream.NodeId);
                else if (stream.DueForProgressLog()) _logger.BackupStillJoining(stream.NodeId, stream.Progress(plan));
            }
            return (plan.Ring.Epoch, caughtUp);
        }
    }

    /// <summary>Stops replicating: the store's tap is removed and every stream ends.</summary>
    public async ValueTask DisposeAsync()
    {
        _member.RingChanged -= OnRingChanged;
        _member.CaughtUpReport = null;
        if (_store.PushTap == this) _store.PushTap = null;
        BackupStream[] streams;
        lock (Sync)
        {
            _disposed = true;
            streams = [.. _streams.Values];
            _streams.Clear();
        }
        foreach (BackupStream stream in streams) await stream.DisposeAsync().ConfigureAwait(false);
    }
}
