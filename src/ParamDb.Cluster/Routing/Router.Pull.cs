using System.Runtime.InteropServices;
using ParamDb.Client;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;

namespace ParamDb.Cluster.Routing;

/// <summary>Pulls: this node's slice from its store, the others' through their peer links with the same consistency.</summary>
public sealed partial class Router
{
    /// <inheritdoc />
    public bool TryPlanPull(TableHandle table, ReadOnlySpan<byte> block, PullOptions options, out KvBlock plan, out ProtocolError error)
    {
        if (!local.TryPlanPull(table, block, options, out plan, out error)) return false;
        if (options.RingEpoch == 0 || node.Ring is not { } ring) return true;
        if (IsStale(ring, options.RingEpoch, out error)) return false;
        return ServesCopies(ring, options, out int self) ? HoldsAll(ring, table, block, plan, self, out error) : OwnsAll(ring, table, block, plan, out error);
    }

    /// <summary>
    /// Whether this node answers <paramref name="options"/>' pull from the copies it holds, a backup's included: a pull
    /// that any copy may answer (<c>ParamDb-Read-From: any</c>), on a node that is up (a joining node's copies may be
    /// stale until its primaries have caught it up).
    /// </summary>
    private bool ServesCopies(ClusterRing ring, PullOptions options, out int self)
    {
        self = ring.NodeIndex(node.Identity.NodeId);
        return options.AnyCopy && self >= 0 && ring.StateOf(self) == NodeState.Up && ring.ReplicaCount > 1;
    }

    /// <summary>A pull's keys by the node that reads them: this node for those it holds a copy of when any copy may answer, else their primaries.</summary>
    private Slices SliceRead(ClusterRing ring, TableHandle table, ReadOnlySpan<byte> block, in KvBlock plan, PullOptions options, out int self) =>
        Slices.Of(ring, table, block, plan, withValues: false, ServesCopies(ring, options, out self) ? self : -1);

    /// <summary>Whether this node holds a copy of every key of a block (as primary or backup); else the 421 to answer.</summary>
    private bool HoldsAll(ClusterRing ring, TableHandle table, ReadOnlySpan<byte> block, in KvBlock kv, int self, out ProtocolError error)
    {
        error = default;
        using Slices slices = Slices.Of(ring, table, block, kv, withValues: false, holder: self);
        if (slices.Count(self) == kv.Count) return true;
        for (int n = 0; n < ring.NodeCount; n++)
        {
            if (n == self || slices.Count(n) == 0) continue;
            error = new ProtocolError(421, ProblemCodes.WrongNode,
                $"Node '{node.Identity.NodeId}' holds no copy of key {slices.Keys(n).Span[0]} in its ring epoch {ring.Epoch} (node '{ring.Nodes[n]}' serves it). Refetch GET /v1/cluster and send the keys to a node that holds them, or send the request without ParamDb-Ring-Epoch to have it routed.");
            break;
        }
        return false;
    }

    /// <inheritdoc />
    public ValueTask<ClockWait> WaitAsync(TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PullOptions options, CancellationToken cancellationToken)
    {
        if (options.RingEpoch != 0 || node.Ring is not { } ring || OwnsAny(ring, table, block.Span, plan))
            return local.WaitAsync(table, block, plan, options, cancellationToken);
        // Nothing is read here: the nodes that hold the rows wait (ReadAsync); this node only reports its clock.
        return local.WaitAsync(table, block, plan, options with { Consistency = Consistency.Eventual }, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<ClockWait> ReadAsync(TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PullOptions options, Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (node.Ring is not { } ring) return local.ReadAsync(table, block, plan, options, destination, cancellationToken);
        if (options.RingEpoch != 0) return ReadLeasedAsync(table, block, plan, options, destination, cancellationToken);
        var slices = SliceRead(ring, table, block.Span, plan, options, out int self);
        if (slices.NodesWithKeys() <= 1 && (plan.Count == 0 || slices.Count(self) == plan.Count))
        {
            slices.Dispose();
            return ReadLeasedAsync(table, block, plan, options, destination, cancellationToken);
        }
        return ReadRoutedRetryingAsync(ring, self, table, block, plan, slices, options, destination, cancellationToken);
    }

    /// <summary>A routed pull, sliced again by the newer ring when a peer refused its part because this node's ring was behind (421).</summary>
    private async ValueTask<ClockWait> ReadRoutedRetryingAsync(ClusterRing ring, int self, TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, Slices slices, PullOptions options, Memory<byte> destination, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            ClockWait result = await ReadRoutedAsync(ring, self, table, slices, options, destination, cancellationToken).ConfigureAwait(false);
            if (result.Error.Status != 421) return result;
            if (attempt == MaxReslices || await NewerRingAsync(ring, cancellationToken).ConfigureAwait(false) is not { } newer)
                return result with { Error = RingMoving(result.Error) };
            ring = newer;
            slices = SliceRead(ring, table, block.Span, plan, options, out self);
        }
    }

    private async ValueTask<ClockWait> ReadRoutedAsync(ClusterRing ring, int self, TableHandle table, Slices slices, PullOptions options, Memory<byte> destination, CancellationToken cancellationToken)
    {
        using (slices)
        {
            int dim = table.Dim;
            slices.RentRows(dim);
            var parts = new List<Task<ClockWait>>(ring.NodeCount);
            for (int n = 0; n < ring.NodeCount; n++)
            {
                if (slices.Count(n) == 0) continue;
                parts.Add(n == self ? Task.FromResult(ReadLocal(table, slices, n)) : PullPeerAsync(ring, n, table, slices, options, cancellationToken));
            }
            ClockWait merged = new(ulong.MaxValue, default, null, 0);
            foreach (ClockWait part in await Task.WhenAll(parts).ConfigureAwait(false))
            {
                if (!part.Error.IsNone) return part;
                merged = merged with { ClockMin = Math.Min(merged.ClockMin, part.ClockMin) };
            }
            if (slices.Count(self) > 0 && !options.AnyCopy && await ConfirmReadAsync(merged, cancellationToken).ConfigureAwait(false) is { Error.IsNone: false } unconfirmed) return unconfirmed;
            slices.Gather(dim, MemoryMarshal.Cast<byte, float>(destination.Span));
            return merged;
        }
    }

    /// <summary>A read of this node's own rows, only while it holds its lease: a node without one may have been replaced.</summary>
    private async ValueTask<ClockWait> ReadLeasedAsync(TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PullOptions options, Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (plan.Count > 0 && await LeaseLapsedAsync(cancellationToken).ConfigureAwait(false) is { } lapsed) return new ClockWait(0, lapsed, null, 0);
        ClockWait read = await local.ReadAsync(table, block, plan, options, destination, cancellationToken).ConfigureAwait(false);
        // A pull any copy may answer does not wait for this node's backups: it may see a push they do not hold yet.
        return plan.Count > 0 && read.Error.IsNone && !options.AnyCopy ? await ConfirmReadAsync(read, cancellationToken).ConfigureAwait(false) : read;
    }

    /// <summary>
    /// A read answers only once the backups hold every push applied before it (docs/replication.md): it may have
    /// read one that is still on its way to them, and if this node died before they had it, the push could be
    /// retried and take effect later than the read that saw it. Immediate while no batch is waiting.
    /// </summary>
    private async ValueTask<ClockWait> ConfirmReadAsync(ClockWait read, CancellationToken cancellationToken) =>
        await replicator.ConfirmAsync(cancellationToken).ConfigureAwait(false) is { } unconfirmed ? read with { Error = unconfirmed } : read;

    private ClockWait ReadLocal(TableHandle table, Slices slices, int n)
    {
        if (LeaseLapsed(out ProtocolError error)) return new ClockWait(0, error, null, 0);
        byte[] part = slices.Block(n, table.Dim, withValues: false, out int length);
        try
        {
            KvBlock.TryParse(part.AsSpan(0, length), KvExpect.NoValues, int.MaxValue, out KvBlock plan, out _);   // built just now: valid
            local.Read(table, part.AsSpan(0, length), plan, MemoryMarshal.AsBytes(slices.Rows(n, table.Dim).Span));
            return new ClockWait(ulong.MaxValue, default, null, 0);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(part);
        }
    }

    private async Task<ClockWait> PullPeerAsync(ClusterRing ring, int n, TableHandle table, Slices slices, PullOptions options, CancellationToken cancellationToken)
    {
        using CancellationTokenSource untilDown = UntilDown(ring, n, cancellationToken);
        Task<ParamDbStream> link = peers.GetAsync(ring, n);
        try
        {
            ParamDbStream stream = await link.WaitAsync(untilDown.Token).ConfigureAwait(false);
            var call = new ParamDbCallOptions
            {
                RingEpoch = ring.Epoch,
                Consistency = options.Consistency,
                // The caller's wait bound, plus time for the rows to travel back.
                Timeout = options.Timeout + TimeSpan.FromSeconds(10),
            };
            PullResult result = await stream.PullAsync(table.Name, slices.Keys(n), slices.Rows(n, table.Dim),
                new ClockStamp(options.Worker, options.Clock), call, untilDown.Token).ConfigureAwait(false);
            return new ClockWait(result.ClockMin, default, null, 0);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new ClockWait(0, PeerError(ring, n, link, e), null, 0);
        }
    }

    /// <summary>Whether this node is the primary of any key of the request.</summary>
    private bool OwnsAny(ClusterRing ring, TableHandle table, ReadOnlySpan<byte> block, in KvBlock kv) =>
        FindKey(ring, table, block, kv, ring.NodeIndex(node.Identity.NodeId), owned: true, out _, out _);
}
