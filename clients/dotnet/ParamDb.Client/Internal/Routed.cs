using System.Runtime.ExceptionServices;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

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

    /// <summary>
    /// Whether a push's slice may be sent again. A worker's push at clock c may not once the worker has moved past c:
    /// a node that has applied a later clock of the worker skips c, so the rows would be dropped without a word.
    /// </summary>
    public virtual bool MaySendAgain => true;
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
/// <para>
/// Clocked pushes (a worker's) keep the exactly-once rule: every node of the ring gets the (worker, clock) — its
/// slice, or a tick when it has no keys. A node skips the keys of every arc whose clock has reached the push's (each
/// arc's clock travels with its rows), so a slice sent again, to the same node or to the node that serves its arcs
/// after a failover, applies each row once: it is skipped where it was applied and replicated, applied where not.
/// </para>
/// <para>
/// A node that fails (503, a broken connection: the push may or may not have been applied there) has its part sent
/// again after the ring is fetched again, with a growing pause, for up to <see cref="RingSource.FailoverWait"/>:
/// once the cluster declares the node down, the new ring sends its keys to the backups that took its arcs. Only
/// pulls and clocked pushes are retried so; an unclocked push fails with the node's error.
/// </para>
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
        long rows = batch.Count, applied = 0;
        HashSet<string>? accepted = clocked ? new(StringComparer.Ordinal) : null;
        RentedBatch? pending = null;
        ParamDbException? wrong = null;
        Exception? transient = null;
        int refreshes = 0, pauses = 0;
        long deadline = Environment.TickCount64 + (long)source.FailoverWait.TotalMilliseconds;
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
                        if (count == 0 && accepted is not null && accepted.Contains(map.Id(n))) continue;   // ticked once
                        if (count > 0) parts[n] = sender.PushAsync(map, n, plan!.SliceOf(n), cancellationToken);
                        // A node that is down or joining serves no arc: nothing to tick (it gets its clocks with its copies).
                        else if (clocked && map.Ring.StateOf(n) == NodeState.Up) parts[n] = sender.TickAsync(map, n, cancellationToken);
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
                        catch (Exception e) when (clocked && IsTransient(e))
                        {
                            (refused ??= new bool[nodes])[n] = true;
                            refusedBy = n;
                            transient = e;
                        }
                        catch (Exception e)
                        {
                            failure ??= e;
                        }
                    }
                    if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
                    if (refused is null) break;
                    if (!sender.MaySendAgain) ExceptionDispatchInfo.Capture(transient ?? wrong!).Throw();
                    if (transient is not null)
                    {
                        if (!await PauseAsync(deadline, pauses++, cancellationToken).ConfigureAwait(false)) ExceptionDispatchInfo.Capture(transient).Throw();
                    }
                    else if (refreshes++ == MaxRefreshes) throw wrong!;
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
                map = await source.RefreshAsync(map, refusedBy, cancellationToken).ConfigureAwait(false) ?? throw (transient ?? wrong!);
                transient = null;
            }
        }
        finally
        {
            pending?.Dispose();
        }
        return new RoutedPush(new PushResult(rows, applied), refreshes + pauses > 0);
    }

    /// <summary>
    /// Pulls <paramref name="batch"/> (Count &gt; 0, a destination of Count × Dim) by <paramref name="map"/>; returns the
    /// minimum of the replies' clocks. The first round's requests are queued before this method first yields.
    /// </summary>
    public static async Task<ulong> PullAsync(SliceSender sender, RingSource source, ClusterMap map, ulong tableHash, Batch batch, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)source.FailoverWait.TotalMilliseconds;
        for (int refreshes = 0, pauses = 0; ; )
        {
            var parts = new ValueTask<ulong>[map.NodeCount];
            ulong clockMin = ulong.MaxValue;
            Refusal refused;
            using (SlicePlan plan = SlicePlan.Build(map, tableHash, batch, push: false))
            {
                for (int n = 0; n < parts.Length; n++)
                    if (plan.CountOf(n) > 0) parts[n] = sender.PullAsync(map, n, plan.SliceOf(n), cancellationToken);
                refused = await AwaitPartsAsync(parts, plan, source, (_, clock) => clockMin = Math.Min(clockMin, clock)).ConfigureAwait(false);
                if (refused.Error is null)
                {
                    plan.Gather();
                    return clockMin;
                }
            }
            map = await NextMapAsync(source, map, refused, deadline, ref refreshes, ref pauses, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Pulls <paramref name="batch"/> (Count &gt; 0, Dim 0) by <paramref name="map"/> into a new array at the table's dim.</summary>
    public static async Task<float[]> PullNewAsync(SliceSender sender, RingSource source, ClusterMap map, ulong tableHash, Batch batch, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)source.FailoverWait.TotalMilliseconds;
        for (int refreshes = 0, pauses = 0; ; )
        {
            var parts = new ValueTask<float[]>[map.NodeCount];
            var rows = new float[]?[parts.Length];
            Refusal refused;
            using (SlicePlan plan = SlicePlan.Build(map, tableHash, batch, push: false))
            {
                for (int n = 0; n < parts.Length; n++)
                    if (plan.CountOf(n) > 0) parts[n] = sender.PullNewAsync(map, n, plan.SliceOf(n), cancellationToken);
                refused = await AwaitPartsAsync(parts, plan, source, (n, part) => rows[n] = part).ConfigureAwait(false);
                if (refused.Error is null) return plan.GatherNew(rows);
            }
            map = await NextMapAsync(source, map, refused, deadline, ref refreshes, ref pauses, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Why a pull goes round again: the last node that refused (421) or failed, its error, and whether it may pass.</summary>
    private readonly record struct Refusal(int RefusedBy, Exception? Error, bool Transient);

    /// <summary>
    /// The map for a pull's next round: after a 421 at once (at most <see cref="MaxRefreshes"/> times), after a
    /// failing node once a pause has passed (until the deadline); else the refusal is thrown.
    /// </summary>
    private static Task<ClusterMap> NextMapAsync(RingSource source, ClusterMap map, Refusal refused, long deadline, ref int refreshes, ref int pauses, CancellationToken cancellationToken)
    {
        bool again = refused.Transient ? Environment.TickCount64 + PauseOf(pauses) <= deadline : refreshes < MaxRefreshes;
        if (!again) ExceptionDispatchInfo.Capture(refused.Error!).Throw();
        int pause = refused.Transient ? PauseOf(pauses++) : 0;
        if (!refused.Transient) refreshes++;
        return RefreshAfterAsync(source, map, refused, pause, cancellationToken);

        static async Task<ClusterMap> RefreshAfterAsync(RingSource source, ClusterMap map, Refusal refused, int pause, CancellationToken cancellationToken)
        {
            if (pause > 0) await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
            return await source.RefreshAsync(map, refused.RefusedBy, cancellationToken).ConfigureAwait(false)
                ?? throw refused.Error!;
        }
    }

    /// <summary>The pause before a failing node's part goes again: 50 ms, doubling to at most 400 ms.</summary>
    private static int PauseOf(int pauses) => 50 << Math.Min(pauses, 3);

    /// <summary>Waits <see cref="PauseOf"/> before another try; false (no wait) when that would pass <paramref name="deadline"/>.</summary>
    private static async Task<bool> PauseAsync(long deadline, int pauses, CancellationToken cancellationToken)
    {
        int pause = PauseOf(pauses);
        if (Environment.TickCount64 + pause > deadline) return false;
        await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// A failure that a failover can end: 503 (a node without its lease, one declared down, a backup that did not
    /// confirm) or a broken connection. The request may or may not have been applied.
    /// </summary>
    public static bool IsTransient(Exception e) => e is ParamDbException { Status: 503 } or HttpRequestException or IOException;

    /// <summary>
    /// Awaits every sent part of a pull (each before the plan's buffers go back to the pool), hands each reply to
    /// <paramref name="take"/>, and returns the last node that failed transiently (<see cref="IsTransient"/>), else the last
    /// that answered 421, with its error (null: none did); any other failure is thrown once every part has ended.
    /// </summary>
    private static async Task<Refusal> AwaitPartsAsync<T>(ValueTask<T>[] parts, SlicePlan plan, RingSource source, Action<int, T> take)
    {
        int refusedBy = -1;
        ParamDbException? wrong = null;
        Exception? failure = null, transient = null;
        int failedBy = -1;
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
            catch (Exception e) when (IsTransient(e))
            {
                failedBy = n;
                transient = e;
            }
            catch (Exception e)
            {
                failure ??= e;
            }
        }
        if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
        return transient is not null ? new Refusal(failedBy, transient, Transient: true) : new Refusal(refusedBy, wrong, Transient: false);
    }

    /// <summary>A 421 <c>wrong_node</c>: the node does not own some of the slice's keys in its ring.</summary>
    public static bool IsWrongNode(ParamDbException e) => e.Status == 421;
}
