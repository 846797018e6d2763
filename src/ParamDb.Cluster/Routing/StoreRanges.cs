using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;

namespace ParamDb.Cluster.Routing;

/// <summary>
/// Keeps a cluster node's store ranges in step with the ring (docs/replication.md): the store keeps a clock for
/// every arc of the ring, serves the arcs this node is primary for, and holds the others, which stay empty until
/// replication places copies there. Applied when the store is attached and after every ring epoch, off the Raft
/// apply path (a change waits for the push gate), one at a time, always to the newest ring.
/// </summary>
public sealed class StoreRanges : IDisposable
{
    private readonly ClusterMember _member;
    private readonly ParamStore _store;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _sync = new(1, 1);
    private bool _disposed;
    private long _epoch;
    private HashSet<ulong>? _served;   // the arcs served after the last change; null before the first
    private ClusterRing? _applied;     // the ring of the last change
    private readonly Dictionary<ulong, long> _versions = [];   // ring epoch → the store's RangesVersion once it was applied; the last few

    /// <summary>The ring epoch the store's ranges (which it serves, which it holds) were last brought to.</summary>
    public ulong Epoch => (ulong)Volatile.Read(ref _epoch);

    /// <summary>
    /// The store's <see cref="ParamStore.RangesVersion"/> as it was brought to ring epoch <paramref name="epoch"/>, or
    /// -1 when the store never had that epoch's ranges (it went from an older to a newer one) or it is too long ago.
    /// A router passes it with a push it sliced by that epoch, so the store refuses the push if its ranges moved on
    /// meanwhile, before its clock advances a range the push's keys were not sent to.
    /// </summary>
    public long VersionAt(ulong epoch)
    {
        lock (_versions) return _versions.TryGetValue(epoch, out long version) ? version : -1;
    }

    /// <summary>
    /// Waits until the store's ranges are those of ring epoch <paramref name="epoch"/> or a later one, at most
    /// <paramref name="timeout"/>: a node must not apply a push to an arc its ring just gave it while its store
    /// still holds the arc as a copy (the push's clock would not count there, and a late batch from the arc's old
    /// primary could overwrite it). False when the time ran out.
    /// </summary>
    public async ValueTask<bool> WaitForAsync(ulong epoch, TimeSpan timeout, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Epoch < epoch)
        {
            if (Environment.TickCount64 >= deadline) return false;
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>Follows <paramref name="member"/>'s ring into <paramref name="store"/> from now on, starting with the current one.</summary>
    public StoreRanges(ClusterMember member, ParamStore store, ILogger logger)
    {
        _member = member;
        _store = store;
        _logger = logger;
        member.RingChanged += OnRingChanged;
        _ = Task.Run(ApplyAsync);
    }

    private void OnRingChanged(ClusterRing ring) => _ = Task.Run(ApplyAsync);

    private async Task ApplyAsync()
    {
        await _sync.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed || _member.Ring is not { } ring) return;
            (Ring ranges, List<ulong> served) = Of(ring, ring.NodeIndex(_member.Identity.NodeId));
            if (Promotes(ring, served)) Failpoints.Hit(Failpoints.Promotion);
            _served = [.. served];
            _applied = ring;
            Task durable = _store.SetRanges(ranges, served);   // in effect once it returns; durable when the task is
            lock (_versions)
            {
                _versions[ring.Epoch] = _store.RangesVersion;
                // A push waits at most 2 s for its store's epoch (Router.StoreBehindAsync); a few epochs back is ample.
                if (_versions.Count > 16) _versions.Remove(_versions.Keys.Min());
            }
            Volatile.Write(ref _epoch, (long)ring.Epoch);
            await durable.ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or IOException or InvalidOperationException or ArgumentException)
        {
            _logger.StoreRangesNotSet(e);
        }
        finally
        {
            _sync.Release();
        }
    }

    /// <summary>
    /// Whether this change makes the node serve an arc it already held while it was up, because another node went
    /// down: a failover promoting it. Not a node that joins, or returns to its own arcs after catching up.
    /// </summary>
    private bool Promotes(ClusterRing ring, List<ulong> served)
    {
        if (_served is not { } before || _applied is not { } previous) return false;
        int self = previous.NodeIndex(_member.Identity.NodeId);
        if (self < 0 || previous.StateOf(self) != NodeState.Up || ring.NodeIndex(_member.Identity.NodeId) is var now && now < 0 || ring.StateOf(now) != NodeState.Up)
            return false;
        bool someoneWentDown = false;
        for (int n = 0; n < ring.NodeCount && !someoneWentDown; n++)
            someoneWentDown = ring.StateOf(n) == NodeState.Down && previous.NodeIndex(ring.Nodes[n]) is var p && p >= 0 && previous.StateOf(p) != NodeState.Down;
        if (!someoneWentDown) return false;
        foreach (ulong token in served)
            if (!before.Contains(token) && previous.Tokens.BinarySearch(token) >= 0) return true;
        return false;
    }

    /// <summary>Every token of the ring, and those of <paramref name="self"/>: the arcs it is primary for.</summary>
    internal static (Ring Ranges, List<ulong> Served) Of(ClusterRing ring, int self)
    {
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        ReadOnlySpan<int> owners = ring.Primaries;   // after a failover, a backup serves its down primary's arcs
        var served = new List<ulong>();
        for (int i = 0; i < tokens.Length; i++)
            if (owners[i] == self) served.Add(tokens[i]);
        return (new Ring(tokens.ToArray()), served);
    }

    /// <summary>Stops following the ring and waits for a change under way, so the store can close.</summary>
    public void Dispose()
    {
        _member.RingChanged -= OnRingChanged;
        _sync.Wait();
        _disposed = true;
        _sync.Release();
    }
}
