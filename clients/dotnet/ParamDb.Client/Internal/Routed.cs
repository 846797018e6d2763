using System.Runtime.ExceptionServices;
using ParamDb.Protocol;

namespace ParamDb.Client.Internal;

/// <summary>
/// How one request reaches one node, for <see cref="Routed"/>: over REST (<see cref="ParamDbClient"/>) or over that
/// node's stream (<see cref="ParamDbWorker"/>). Every call carries the map's epoch. The methods must queue their
/// request before they first yield, so requests made in a row reach each node in that order.
/// </summary>
internal abstract class SliceSender
{
    /// <summary>Pushes a slice to a node.</summary>
    public abstract ValueTask<PushResult> PushAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken);

    /// <summary>An empty push at the call's clock (only for clocked pushes).</summary>
    public abstract ValueTask<PushResult> TickAsync(ClusterMap map, int node, CancellationToken cancellationToken);

    /// <summary>Pulls a slice into its destination; returns the reply's minimum clock (0 when the transport has none).</summary>
    public abstract ValueTask<ulong> PullAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken);

    /// <summary>Pulls a slice into a new array at the table's dim.</summary>
    public abstract ValueTask<float[]> PullNewAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken);
}

/// <summary>A routed push's result, and whether some of it was sent again after a 421.</summary>
internal readonly record struct RoutedPush(PushResult Result, bool Retried);

/// <summary>
/// Push and pull against a cluster (docs/cluster.md): the batch is sliced by the ring, each node gets its slice in one
/// request stamped with the ring epoch, pull replies are gathered in key order. A node that answers 421
/// <c>wrong_node</c> refused its whole slice, so nothing of it was applied: the ring is fetched again and the refused
/// keys alone are sliced again and sent (a pull is simply made again). At most <see cref="MaxRefreshes"/> times.
/// </summary>
/// <remarks>
/// Clocked pushes (a worker's) keep the exactly-once rule: every node of the ring gets the (worker, clock) once — its
/// slice, or a tick when it has no keys — and never twice, since a node skips a second push at a clock it has seen.
/// A retry after a 421 therefore goes only to nodes that have not accepted this clock yet (the node that refused, a
/// node new to the ring). Rows that a newer ring gives to a node that already accepted the clock cannot be applied
/// at that clock; the push then fails with <c>wrong_node</c> naming them (a node left the ring mid-push).
/// </remarks>
internal static class Routed
{
    /// <summary>Ring refetches one call makes before it gives up and throws the last 421.</summary>
    public const int MaxRefreshes = 3;

    /// <summary>
    /// Pushes <paramref name="batch"/> (Count &gt; 0 unless <paramref name="clocked"/>) by <paramref name="map"/>. The
    /// first round's requests are queued before this method first yields.
    /// </summary>
    public static async Task<RoutedPush> PushAsync(SliceSender sender, RingSource source, ClusterMap map, ulong tableHash, Batch batch,
        bool clocked, CancellationToken cancellationToken)
    {
        long rows = batch.Count, applied = 0, lost = 0;
        string? lostTo = null;
        HashSet<string>? accepted = clocked ? new(StringComparer.Ordinal) : null;
        RentedBatch? pending = null;
        ParamDbException? wrong = null;
        int refreshes = 0;
        try
        {
            while (true)
            {
                int nodes = map.NodeCount;
                var parts = new ValueTask<PushResult>[nodes];
                var sent = new bool[nodes];
                bool[]? refused = null;
                int refusedBy = -1;
                Exception? failure = null;
                SlicePlan? plan = batch.Count > 0 ? SlicePlan.Build(map, tableHash, batch, push: true) : null;
                try
                {
                    for (int n = 0; n < nodes; n++)
                    {
                        int count = plan?.CountOf(n) ?? 0;
                        if (accepted is not null && accepted.Contains(map.Id(n)))
                        {
                            if (count > 0)
                            {
                                lost += count;
                                lostTo = map.Id(n);
                            }
                            continue;
                        }
                        if (count > 0) parts[n] = sender.PushAsync(map, n, plan!.SliceOf(n), cancellationToken);
                        else if (clocked) parts[n] = sender.TickAsync(map, n, cancellationToken);
                        else continue;
                        sent[n] = true;
                    }
                    // Every request is awaited before the plan's buffers go back to the pool.
                    for (int n = 0; n < nodes; n++)
                    {
                        if (!sent[n]) continue;
                        try
                        {
                            PushResult result = await parts[n].ConfigureAwait(false);
                            applied += result.Applied;
                            accepted?.Add(map.Id(n));
                        }
                        catch (ParamDbException e) when (IsWrongNode(e))
                        {
                            source.NoteWrongNode();
                            (refused ??= new bool[nodes])[n] = true;
                            refusedBy = n;
                            wrong = e;
                        }
                        catch (Exception e)
                        {
                            failure ??= e;
                        }
                    }
                    if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
                    if (refused is null) break;
                    if (refreshes++ == MaxRefreshes) throw wrong!;
                    RentedBatch? next = null;
                    batch = plan is null ? batch : plan.Pending(refused, out next);
                    if (next is not null)
                    {
                        pending?.Dispose();
                        pending = next;
                    }
                }
                finally
                {
                    plan?.Dispose();
                }
                map = await source.RefreshAsync(map, refusedBy, cancellationToken).ConfigureAwait(false) ?? throw wrong!;
            }
        }
        finally
        {
            pending?.Dispose();
        }
        if (lost > 0)
        {
            throw new ParamDbException(421, ProblemCodes.WrongNode,
                $"The ring changed during this push: {lost} of its rows now belong to node '{lostTo}', which had already accepted this " +
                "push's clock, so they were not applied (a node skips a second push at a clock it has seen). The other rows were applied. " +
                "Push those rows again at the next clock.");
        }
        return new RoutedPush(new PushResult(rows, applied), refreshes > 0);
    }

    /// <summary>
    /// Pulls <paramref name="batch"/> (Count &gt; 0, a destination of Count × Dim) by <paramref name="map"/>; returns the
    /// minimum of the replies' clocks. The first round's requests are queued before this method first yields.
    /// </summary>
    public static async Task<ulong> PullAsync(SliceSender sender, RingSource source, ClusterMap map, ulong tableHash, Batch batch, CancellationToken cancellationToken)
    {
        for (int refreshes = 0; ; refreshes++)
        {
            var parts = new ValueTask<ulong>[map.NodeCount];
            ulong clockMin = ulong.MaxValue;
            (int RefusedBy, ParamDbException? Wrong) refused;
            using (SlicePlan plan = SlicePlan.Build(map, tableHash, batch, push: false))
            {
                for (int n = 0; n < parts.Length; n++)
                    if (plan.CountOf(n) > 0) parts[n] = sender.PullAsync(map, n, plan.SliceOf(n), cancellationToken);
                refused = await AwaitPartsAsync(parts, plan, source, (_, clock) => clockMin = Math.Min(clockMin, clock)).ConfigureAwait(false);
                if (refused.Wrong is null)
                {
                    plan.Gather();
                    return clockMin;
                }
            }
            if (refreshes == MaxRefreshes) throw refused.Wrong;
            map = await source.RefreshAsync(map, refused.RefusedBy, cancellationToken).ConfigureAwait(false) ?? throw refused.Wrong;
        }
    }

    /// <summary>Pulls <paramref name="batch"/> (Count &gt; 0, Dim 0) by <paramref name="map"/> into a new array at the table's dim.</summary>
    public static async Task<float[]> PullNewAsync(SliceSender sender, RingSource source, ClusterMap map, ulong tableHash, Batch batch, CancellationToken cancellationToken)
    {
        for (int refreshes = 0; ; refreshes++)
        {
            var parts = new ValueTask<float[]>[map.NodeCount];
            var rows = new float[]?[parts.Length];
            (int RefusedBy, ParamDbException? Wrong) refused;
            using (SlicePlan plan = SlicePlan.Build(map, tableHash, batch, push: false))
            {
                for (int n = 0; n < parts.Length; n++)
                    if (plan.CountOf(n) > 0) parts[n] = sender.PullNewAsync(map, n, plan.SliceOf(n), cancellationToken);
                refused = await AwaitPartsAsync(parts, plan, source, (n, part) => rows[n] = part).ConfigureAwait(false);
                if (refused.Wrong is null) return plan.GatherNew(rows);
            }
            if (refreshes == MaxRefreshes) throw refused.Wrong;
            map = await source.RefreshAsync(map, refused.RefusedBy, cancellationToken).ConfigureAwait(false) ?? throw refused.Wrong;
        }
    }

    /// <summary>
    /// Awaits every sent part of a pull (each before the plan's buffers go back to the pool), hands each reply to
    /// <paramref name="take"/>, and returns the last node that answered 421 and its refusal (Wrong null: none did); any other failure is
    /// thrown once every part has ended.
    /// </summary>
    private static async Task<(int RefusedBy, ParamDbException? Wrong)> AwaitPartsAsync<T>(ValueTask<T>[] parts, SlicePlan plan, RingSource source, Action<int, T> take)
    {
        int refusedBy = -1;
        ParamDbException? wrong = null;
        Exception? failure = null;
        for (int n = 0; n < parts.Length; n++)
        {
            if (plan.CountOf(n) == 0) continue;
            try
            {
                take(n, await parts[n].ConfigureAwait(false));
            }
            catch (ParamDbException e) when (IsWrongNode(e))
            {
                source.NoteWrongNode();
                refusedBy = n;
                wrong = e;
            }
            catch (Exception e)
            {
                failure ??= e;
            }
        }
        if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
        return (refusedBy, wrong);
    }

    /// <summary>A 421 <c>wrong_node</c>: the node does not own some of the slice's keys in its ring.</summary>
    public static bool IsWrongNode(ParamDbException e) => e.Status == 421;
}
