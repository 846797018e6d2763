using System.Buffers;
using ParamDb.Client;
using ParamDb.Cluster.Membership;
using ParamDb.Cluster.Replication;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;
using ParamDb.Storage.Local;

namespace ParamDb.Cluster.Routing;

/// <summary>
/// The data plane of a cluster node (docs/cluster.md, "Routing"). A request sliced by the sender (it carries a
/// ring epoch: a smart client, or a peer's router) is served from this node's store if the node owns all its keys
/// in its current epoch, and answered 421 <c>wrong_node</c> otherwise. Any other request is routed: its keys are
/// sliced by primary, this node applies its own slice, each other node gets its slice over its peer link, and the
/// replies are gathered in key order. A clocked push reaches every node (an empty push where it has no keys), so
/// every node's clocks move with every worker's.
/// </summary>
/// <remarks>
/// A routed request is not atomic across nodes: when one part fails, the others may have applied. A push with a
/// worker clock is safe to retry (each node skips what it already applied); one without may apply twice.
/// </remarks>
public sealed partial class Router(ClusterMember node, LocalDataPlane local, PeerLinks peers, Replicator replicator) : IDataPlane
{
    /// <inheritdoc />
    public ValueTask<PushReply> PushAsync(TableHandle table, ReadOnlyMemory<byte> block, PushOptions options, CancellationToken cancellationToken)
    {
        if (node.Ring is not { } ring) return local.PushAsync(table, block, options, cancellationToken);
        if (options.RingEpoch != 0)
        {
            if (IsStale(ring, options.RingEpoch, out ProtocolError error)) return new(PushReply.Refused(error));
            if (!KvBlock.TryParse(block.Span, KvExpect.Values, int.MaxValue, out KvBlock kv, out error)) return new(PushReply.Refused(error));
            return OwnsAll(ring, table, block.Span, kv, out error) ? PushLeasedAsync(table, block, options, cancellationToken) : new(PushReply.Refused(error));
        }
        if (!local.TryCheckPush(table, block.Span, options, out KvBlock plan, out ProtocolError refused)) return new(PushReply.Refused(refused));
        return PushRoutedAsync(ring, table, block, plan, options, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<PushReply> TickAsync(TableHandle table, PushOptions options, CancellationToken cancellationToken)
    {
        if (node.Ring is { } current && options.RingEpoch != 0 && IsStale(current, options.RingEpoch, out ProtocolError stale)) return new(PushReply.Refused(stale));
        if (node.Ring is null) return local.TickAsync(table, options, cancellationToken);
        if (node.Ring is not { } ring || options.RingEpoch != 0 || !options.Stamp.IsClocked) return TickLeasedAsync(table, options, cancellationToken);
        return TickEverywhereAsync(ring, table, options, cancellationToken);
    }

    /// <summary>
    /// A push into this node's own ranges, while it holds its lease (docs/replication.md): refused before it is
    /// applied when the lease has lapsed, and not acknowledged when it lapsed while the push was applied.
    /// </summary>
    private async ValueTask<PushReply> PushLeasedAsync(TableHandle table, ReadOnlyMemory<byte> block, PushOptions options, CancellationToken cancellationToken)
    {
        if (await LeaseLapsedAsync(cancellationToken).ConfigureAwait(false) is { } lapsed) return PushReply.Refused(lapsed);
        PushReply reply = await local.PushAsync(table, block, options, cancellationToken).ConfigureAwait(false);
        return await ConfirmAsync(reply, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// An applied push is acknowledged only once every backup that is not down holds its rows (docs/replication.md),
    /// and only while this node still holds its lease.
    /// </summary>
    private async ValueTask<PushReply> ConfirmAsync(PushReply reply, CancellationToken cancellationToken)
    {
        if (!reply.Accepted) return reply;
        if (await replicator.ConfirmAsync(cancellationToken).ConfigureAwait(false) is { } unconfirmed) return PushReply.Refused(unconfirmed);
        return await LeaseLapsedAsync(cancellationToken).ConfigureAwait(false) is { } late ? PushReply.Refused(late) : reply;
    }

    private async ValueTask<PushReply> TickLeasedAsync(TableHandle table, PushOptions options, CancellationToken cancellationToken)
    {
        if (await LeaseLapsedAsync(cancellationToken).ConfigureAwait(false) is { } lapsed) return PushReply.Refused(lapsed);
        PushReply reply = await local.TickAsync(table, options, cancellationToken).ConfigureAwait(false);
        return await ConfirmAsync(reply, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Null while this node holds its lease. Without one it waits up to <see cref="ClusterOptions.DownAfter"/> for a
    /// renewal (a node just started, or one whose heartbeat stalled under load, has one again within a heartbeat or
    /// two), and then answers for none of its ranges (503 <c>unavailable</c>): the leader may be about to declare it
    /// down and hand its ranges to their backups.
    /// </summary>
    private async ValueTask<ProtocolError?> LeaseLapsedAsync(CancellationToken cancellationToken)
    {
        if (node.Lease.IsHeld || await node.Lease.WaitAsync(node.Options.DownAfter, cancellationToken).ConfigureAwait(false)) return null;
        return LapsedError();
    }

    /// <summary>As <see cref="LeaseLapsedAsync"/> without waiting, for paths that cannot.</summary>
    private bool LeaseLapsed(out ProtocolError error)
    {
        error = default;
        if (node.Lease.IsHeld) return false;
        error = LapsedError();
        return true;
    }

    private ProtocolError LapsedError() => new(503, ProblemCodes.Unavailable,
        $"Node '{node.Identity.NodeId}' holds no lease from the cluster's leader (no heartbeat of its own was granted for {node.Options.DownAfter.TotalMilliseconds:F0} ms), so it answers for none of its ranges. Retry shortly; a push with a worker clock is safe to retry.");

    private async ValueTask<PushReply> PushRoutedAsync(ClusterRing ring, TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PushOptions options, CancellationToken cancellationToken)
    {
        using Slices slices = Slices.Of(ring, table, block.Span, plan, withValues: true);
        int self = ring.NodeIndex(node.Identity.NodeId);
        var parts = new List<Task<PushReply>>(ring.NodeCount);
        for (int n = 0; n < ring.NodeCount; n++)
        {
            if (slices.Count(n) == 0 && !options.Stamp.IsClocked) continue;
            parts.Add(n == self
                ? PushLocalAsync(table, slices, n, options, cancellationToken)
                : PushPeerAsync(ring, n, table, slices, options, cancellationToken));
        }
        return Merge(await Task.WhenAll(parts).ConfigureAwait(false), plan.Count);
    }

    private async ValueTask<PushReply> TickEverywhereAsync(ClusterRing ring, TableHandle table, PushOptions options, CancellationToken cancellationToken)
    {
        int self = ring.NodeIndex(node.Identity.NodeId);
        var parts = new Task<PushReply>[ring.NodeCount];
        for (int n = 0; n < ring.NodeCount; n++)
        {
            parts[n] = n == self
                ? TickLeasedAsync(table, options, cancellationToken).AsTask()
                : PushPeerAsync(ring, n, table, Slices.Empty, options, cancellationToken);
        }
        return Merge(await Task.WhenAll(parts).ConfigureAwait(false), 0);
    }

    private async Task<PushReply> PushLocalAsync(TableHandle table, Slices slices, int n, PushOptions options, CancellationToken cancellationToken)
    {
        if (slices.Count(n) == 0) return await TickLeasedAsync(table, options, cancellationToken).ConfigureAwait(false);
        byte[] part = slices.Block(n, table.Dim, withValues: true, out int length);
        try
        {
            return await PushLeasedAsync(table, part.AsMemory(0, length), options with { RingEpoch = 0 }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(part);
        }
    }

    private async Task<PushReply> PushPeerAsync(ClusterRing ring, int n, TableHandle table, Slices slices, PushOptions options, CancellationToken cancellationToken)
    {
        Task<ParamDbStream> link = peers.GetAsync(ring, n);
        try
        {
            ParamDbStream stream = await link.ConfigureAwait(false);
            var stamp = new ClockStamp(options.Stamp.Worker, options.Stamp.Clock);
            var call = new ParamDbCallOptions { RingEpoch = ring.Epoch };
            Protocol.PushResult result = slices.Count(n) == 0
                ? await stream.TickAsync(table.Name, stamp, call, cancellationToken).ConfigureAwait(false)
                : await stream.PushAsync(table.Name, slices.Keys(n), slices.Rows(n, table.Dim), stamp, call, cancellationToken).ConfigureAwait(false);
            return new PushReply(default, result, Task.CompletedTask);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return PushReply.Refused(PeerError(ring, n, link, e));
        }
    }

    /// <summary>One reply for all parts: the first refusal, else rows and applied summed; durable when the local part is.</summary>
    private static PushReply Merge(PushReply[] parts, long rows)
    {
        long applied = 0;
        Task durable = Task.CompletedTask;
        foreach (PushReply part in parts)
        {
            if (!part.Accepted) return part;
            applied += part.Result!.Applied;
            if (!part.Durable.IsCompletedSuccessfully) durable = part.Durable;
        }
        return new PushReply(default, new Protocol.PushResult(rows, applied), durable);
    }

    /// <summary>The problem a failed peer call becomes; a broken link is dropped so the next call opens a new one.</summary>
    private ProtocolError PeerError(ClusterRing ring, int n, Task<ParamDbStream> link, Exception e)
    {
        if (e is ParamDbException problem) return new ProtocolError(problem.Status, problem.Code, problem.Detail ?? problem.Message);
        peers.Forget(ring, n, link);
        if (e is TimeoutException)
            return new ProtocolError(408, ProblemCodes.ClockWaitTimeout, $"Node '{ring.Nodes[n]}' did not answer its part of this request in time: {e.Message}");
        return new ProtocolError(503, ProblemCodes.Unavailable, $"Node '{ring.Nodes[n]}' could not be reached for its part of this request ({e.GetType().Name}: {e.Message}). Parts on other nodes may have been applied; a push with a worker clock is safe to retry.");
    }

    /// <summary>
    /// Whether a request was sliced by a ring older than this node's: then it may miss a node that joined since (a
    /// clocked push would not reach it), so it is refused as a whole and the client refetches the ring.
    /// </summary>
    private static bool IsStale(ClusterRing ring, ulong requestEpoch, out ProtocolError error)
    {
        error = default;
        if (requestEpoch >= ring.Epoch) return false;
        error = new ProtocolError(421, ProblemCodes.WrongNode,
            $"This request was sliced by ring epoch {requestEpoch}; the ring is at epoch {ring.Epoch} now. Refetch GET /v1/cluster and slice the keys again.");
        return true;
    }

    /// <summary>Whether this node owns every key of a block in its ring; else the 421 to answer.</summary>
    private bool OwnsAll(ClusterRing ring, TableHandle table, ReadOnlySpan<byte> block, in KvBlock kv, out ProtocolError error)
    {
        int self = ring.NodeIndex(node.Identity.NodeId);
        error = default;
        return !FindKey(ring, table, block, kv, self, owned: false, out ulong key, out int primary) || WrongNode(ring, key, primary, out error);
    }

    /// <summary>
    /// The first key of a block whose primary is (<paramref name="owned"/>) or is not node <paramref name="self"/>,
    /// with that primary; false when there is none. One ring search per 4,096-key block: a block has one primary.
    /// </summary>
    private static bool FindKey(ClusterRing ring, TableHandle table, ReadOnlySpan<byte> block, in KvBlock kv, int self, bool owned, out ulong key, out int primary)
    {
        if (kv.IsRange)
        {
            foreach (NodeRange run in KeySlicer.SliceRange(ring, table.RingHash, kv.First, kv.Count))
            {
                if ((run.Node == self) != owned) continue;
                (key, primary) = (run.First, run.Node);
                return true;
            }
        }
        else
        {
            ulong lastBlock = ulong.MaxValue;
            foreach (ulong k in kv.Keys(block))
            {
                if (k >> Protocol.Ring.BlockBits == lastBlock) continue;
                lastBlock = k >> Protocol.Ring.BlockBits;
                int p = ring.PrimaryOf(table.RingHash, k);
                if ((p == self) != owned) continue;
                (key, primary) = (k, p);
                return true;
            }
        }
        (key, primary) = (0, -1);
        return false;
    }

    private bool WrongNode(ClusterRing ring, ulong key, int primary, out ProtocolError error)
    {
        error = WrongNodeError(node.Identity.NodeId, ring, key, primary);
        return false;
    }

    /// <summary>421 <c>wrong_node</c>: the detail names the key, the node's epoch and the key's primary in it.</summary>
    public static ProtocolError WrongNodeError(string self, ClusterRing ring, ulong key, int primary) =>
        new(421, ProblemCodes.WrongNode,
            $"Node '{self}' does not own key {key} in its ring epoch {ring.Epoch} (node '{ring.Nodes[primary]}' does). Refetch GET /v1/cluster and send the keys to their primaries, or send the request without ParamDb-Ring-Epoch to have it routed.");
}
