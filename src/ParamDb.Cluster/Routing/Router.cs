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
public sealed partial class Router(ClusterMember node, LocalDataPlane local, PeerLinks peers, Replicator replicator, StoreRanges storeRanges) : IDataPlane
{
    /// <inheritdoc />
    public ValueTask<PushReply> PushAsync(TableHandle table, ReadOnlyMemory<byte> block, PushOptions options, CancellationToken cancellationToken)
    {
        if (node.Ring is not { } ring) return local.PushAsync(table, block, options, cancellationToken);
        if (options.RingEpoch > ring.Epoch) return PushAheadAsync(table, block, options, cancellationToken);
        if (options.RingEpoch != 0)
        {
            if (IsStale(ring, options.RingEpoch, out ProtocolError error)) return new(PushReply.Refused(error));
            if (!KvBlock.TryParse(block.Span, KvExpect.Values, int.MaxValue, out KvBlock kv, out error)) return new(PushReply.Refused(error));
            return OwnsAll(ring, table, block.Span, kv, out error) ? PushLeasedAsync(table, block, options, ring, cancellationToken) : new(PushReply.Refused(error));
        }
        if (!local.TryCheckPush(table, block.Span, options, out KvBlock plan, out ProtocolError refused)) return new(PushReply.Refused(refused));
        return PushRoutedRetryingAsync(ring, table, block, plan, options, cancellationToken);
    }

    /// <summary>A request sliced by a ring newer than this node's (a peer or client that applied an epoch first): served once this node has it too.</summary>
    private async ValueTask<PushReply> PushAheadAsync(TableHandle table, ReadOnlyMemory<byte> block, PushOptions options, CancellationToken cancellationToken)
    {
        if (await RingAtAsync(options.RingEpoch, cancellationToken).ConfigureAwait(false) is null)
            return PushReply.Refused(new ProtocolError(503, ProblemCodes.Unavailable, $"This request was sliced by ring epoch {options.RingEpoch}, which node '{node.Identity.NodeId}' has not applied yet; retry shortly."));
        return await PushAsync(table, block, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Most times a routed request is sliced again after a peer answered that the ring moved on.</summary>
    private const int MaxReslices = 3;

    /// <summary>
    /// A routed push, sliced again by the newer ring when a peer refused its part because this node's ring was
    /// behind (421): for a clocked push only, since each node skips what it already applied; an unclocked one would
    /// apply twice where its parts succeeded, so its client gets 503 and decides.
    /// </summary>
    private async ValueTask<PushReply> PushRoutedRetryingAsync(ClusterRing ring, TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PushOptions options, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            PushReply reply = await PushRoutedAsync(ring, table, block, plan, options, cancellationToken).ConfigureAwait(false);
            if (reply.Accepted || reply.Error.Status != 421) return reply;
            if (!options.Stamp.IsClocked || attempt == MaxReslices || await NewerRingAsync(ring, cancellationToken).ConfigureAwait(false) is not { } newer)
                return PushReply.Refused(RingMoving(reply.Error));
            ring = newer;
        }
    }

    /// <summary>The node's ring once it is newer than <paramref name="ring"/> (a peer has applied an epoch this node is about to), or null after 2 s.</summary>
    private Task<ClusterRing?> NewerRingAsync(ClusterRing ring, CancellationToken cancellationToken) => RingAtAsync(ring.Epoch + 1, cancellationToken);

    /// <summary>The node's ring once its epoch is at least <paramref name="epoch"/>, or null after 2 s (a Raft entry reaches every live member well within that).</summary>
    private async Task<ClusterRing?> RingAtAsync(ulong epoch, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + 2000;
        while (true)
        {
            if (node.Ring is { } now && now.Epoch >= epoch) return now;
            if (Environment.TickCount64 >= deadline) return null;
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A peer's 421 as this node's client sees it: the client sent no epoch, so the ring moving is this node's business, and the answer is a retryable 503.</summary>
    private static ProtocolError RingMoving(ProtocolError peer) => new(503, ProblemCodes.Unavailable,
        $"The cluster's ring moved on while this request was routed ({peer.Detail}). Parts on other nodes may have been applied; retry it (a push with a worker clock is applied once).");

    /// <inheritdoc />
    public ValueTask<PushReply> TickAsync(TableHandle table, PushOptions options, CancellationToken cancellationToken)
    {
        if (node.Ring is not { } ring) return local.TickAsync(table, options, cancellationToken);
        if (options.RingEpoch != 0 && IsStale(ring, options.RingEpoch, out ProtocolError stale)) return new(PushReply.Refused(stale));
        if (options.RingEpoch != 0 || !options.Stamp.IsClocked) return TickLeasedAsync(table, options, ring, cancellationToken);
        return TickEverywhereAsync(ring, table, options, cancellationToken);
    }

    /// <summary>
    /// A push into this node's own ranges, while it holds its lease (docs/replication.md): refused before it is
    /// applied when the lease has lapsed, and not acknowledged when it lapsed while the push was applied.
    /// </summary>
    /// <param name="table">The table.</param>
    /// <param name="block">The keys of this node's arcs, with their values.</param>
    /// <param name="options">How the push came.</param>
    /// <param name="slicedBy">The ring the keys were sliced by. The store applies the push only with the ranges it
    /// had for that ring (<see cref="StoreRanges.VersionAt"/>): a clocked push advances every range the store
    /// serves, and applied once a failover had made it serve the arcs of a dead node, it marked them as having a
    /// push whose keys there were sent to the dead node; the push's retry was then skipped on them, and lost.</param>
    /// <param name="cancellationToken">Cancels the wait for the lease, the store or the backups.</param>
    private async ValueTask<PushReply> PushLeasedAsync(TableHandle table, ReadOnlyMemory<byte> block, PushOptions options, ClusterRing slicedBy, CancellationToken cancellationToken)
    {
        if (await LeaseLapsedAsync(cancellationToken).ConfigureAwait(false) is { } lapsed) return PushReply.Refused(lapsed);
        if (await StoreBehindAsync(slicedBy, cancellationToken).ConfigureAwait(false) is { } behind) return PushReply.Refused(behind);
        PushReply reply;
        int applying = replicator.EnterApply();
        try
        {
            reply = await local.PushAsync(table, block, options with { RangesVersion = storeRanges.VersionAt(slicedBy.Epoch) }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            replicator.ExitApply(applying);
        }
        reply = await ConfirmAsync(reply, cancellationToken).ConfigureAwait(false);
        return reply.Accepted && Moved(slicedBy, table, block.Span, out ProtocolError moved) ? PushReply.Refused(moved) : reply;
    }

    /// <summary>Null once the store serves the arcs of <paramref name="ring"/>'s epoch (waiting up to 2 s for it); else the 503 to answer.</summary>
    private async ValueTask<ProtocolError?> StoreBehindAsync(ClusterRing ring, CancellationToken cancellationToken)
    {
        if (storeRanges.Epoch >= ring.Epoch || await storeRanges.WaitForAsync(ring.Epoch, TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false)) return null;
        return new ProtocolError(503, ProblemCodes.Unavailable, $"Node '{node.Identity.NodeId}' is still bringing its store to ring epoch {ring.Epoch}; retry shortly.");
    }

    /// <summary>Whether this node serves the same arcs in both rings (an epoch that changed another node's state only).</summary>
    private bool ServesSame(ClusterRing before, ClusterRing now)
    {
        if (!before.Tokens.SequenceEqual(now.Tokens)) return false;
        int was = before.NodeIndex(node.Identity.NodeId), @is = now.NodeIndex(node.Identity.NodeId);
        ReadOnlySpan<int> a = before.Primaries, b = now.Primaries;
        for (int i = 0; i < a.Length; i++)
            if ((a[i] == was) != (b[i] == @is)) return false;
        return true;
    }

    /// <summary>
    /// Whether the ring changed while a push was applied here and this node no longer serves all its keys: then the
    /// push may have missed the arc's new primary and is not acknowledged (503; it may have been applied here).
    /// </summary>
    private bool Moved(ClusterRing? before, TableHandle table, ReadOnlySpan<byte> block, out ProtocolError error)
    {
        error = default;
        if (node.Ring is not { } now || before is null || now.Epoch == before.Epoch || ServesSame(before, now)) return false;
        if (block.Length > 0 && KvBlock.TryParse(block, KvExpect.Values, int.MaxValue, out KvBlock kv, out _) && OwnsAll(now, table, block, kv, out _)) return false;
        error = new ProtocolError(503, ProblemCodes.Unavailable,
            $"The ring moved from epoch {before.Epoch} to {now.Epoch} while this push was applied on node '{node.Identity.NodeId}', which no longer serves all its keys: it is not acknowledged (it may have been applied here). Retry it; a push with a worker clock is applied once.");
        return true;
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

    /// <summary>A tick of this node's arcs, as <see cref="PushLeasedAsync"/> applies a push: only with the store's ranges of <paramref name="slicedBy"/>.</summary>
    private async ValueTask<PushReply> TickLeasedAsync(TableHandle table, PushOptions options, ClusterRing slicedBy, CancellationToken cancellationToken)
    {
        if (await LeaseLapsedAsync(cancellationToken).ConfigureAwait(false) is { } lapsed) return PushReply.Refused(lapsed);
        if (await StoreBehindAsync(slicedBy, cancellationToken).ConfigureAwait(false) is { } behind) return PushReply.Refused(behind);
        PushReply reply = await local.TickAsync(table, options with { RangesVersion = storeRanges.VersionAt(slicedBy.Epoch) }, cancellationToken).ConfigureAwait(false);
        reply = await ConfirmAsync(reply, cancellationToken).ConfigureAwait(false);
        return reply.Accepted && Moved(slicedBy, table, default, out ProtocolError moved) ? PushReply.Refused(moved) : reply;
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
            // A clocked push ticks every node that serves arcs; a down or joining node serves none (its arcs' backups do).
            if (slices.Count(n) == 0 && (!options.Stamp.IsClocked || ring.StateOf(n) != NodeState.Up)) continue;
            parts.Add(n == self
                ? PushLocalAsync(ring, table, slices, n, options, cancellationToken)
                : PushPeerAsync(ring, n, table, slices, options, cancellationToken));
        }
        return Merge(await Task.WhenAll(parts).ConfigureAwait(false), plan.Count);
    }

    private async ValueTask<PushReply> TickEverywhereAsync(ClusterRing ring, TableHandle table, PushOptions options, CancellationToken cancellationToken)
    {
        int self = ring.NodeIndex(node.Identity.NodeId);
        var parts = new List<Task<PushReply>>(ring.NodeCount);
        for (int n = 0; n < ring.NodeCount; n++)
        {
            if (ring.StateOf(n) != NodeState.Up) continue;   // serves no arcs: nothing to tick
            parts.Add(n == self
                ? TickLeasedAsync(table, options, ring, cancellationToken).AsTask()
                : PushPeerAsync(ring, n, table, Slices.Empty, options, cancellationToken));
        }
        return Merge(await Task.WhenAll(parts).ConfigureAwait(false), 0);
    }

    private async Task<PushReply> PushLocalAsync(ClusterRing ring, TableHandle table, Slices slices, int n, PushOptions options, CancellationToken cancellationToken)
    {
        if (slices.Count(n) == 0) return await TickLeasedAsync(table, options, ring, cancellationToken).ConfigureAwait(false);
        byte[] part = slices.Block(n, table.Dim, withValues: true, out int length);
        try
        {
            return await PushLeasedAsync(table, part.AsMemory(0, length), options with { RingEpoch = 0 }, ring, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(part);
        }
    }

    private async Task<PushReply> PushPeerAsync(ClusterRing ring, int n, TableHandle table, Slices slices, PushOptions options, CancellationToken cancellationToken)
    {
        using CancellationTokenSource untilDown = UntilDown(ring, n, cancellationToken);
        Task<ParamDbStream> link = peers.GetAsync(ring, n);
        try
        {
            ParamDbStream stream = await link.WaitAsync(untilDown.Token).ConfigureAwait(false);
            var stamp = new ClockStamp(options.Stamp.Worker, options.Stamp.Clock);
            var call = new ParamDbCallOptions { RingEpoch = ring.Epoch };
            Protocol.PushResult result = slices.Count(n) == 0
                ? await stream.TickAsync(table.Name, stamp, call, untilDown.Token).ConfigureAwait(false)
                : await stream.PushAsync(table.Name, slices.Keys(n), slices.Rows(n, table.Dim), stamp, call, untilDown.Token).ConfigureAwait(false);
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

    /// <summary>
    /// The token of a call to node <paramref name="n"/>: the caller's, also cancelled once the ring declares the node
    /// down (<see cref="PeerLinks.DownToken"/>). Taken before the link, so a declaration in between is not missed.
    /// </summary>
    private CancellationTokenSource UntilDown(ClusterRing ring, int n, CancellationToken cancellationToken) =>
        CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, peers.DownToken(ring.Nodes[n]));

    /// <summary>The problem a failed peer call becomes; a broken link is dropped so the next call opens a new one.</summary>
    private ProtocolError PeerError(ClusterRing ring, int n, Task<ParamDbStream> link, Exception e)
    {
        if (e is ParamDbException problem) return new ProtocolError(problem.Status, problem.Code, problem.Detail ?? problem.Message);
        peers.Forget(ring, n, link);
        if (e is OperationCanceledException)
            return new ProtocolError(503, ProblemCodes.Unavailable, $"Node '{ring.Nodes[n]}' was declared down while its part of this request was under way. Parts on other nodes may have been applied; a push with a worker clock is safe to retry, and goes to the nodes that took its arcs over.");
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
