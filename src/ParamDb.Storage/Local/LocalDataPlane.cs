using System.Runtime.InteropServices;
using ParamDb.Protocol;

namespace ParamDb.Storage.Local;

/// <summary>
/// The data plane of a single node: checks each request once and applies it to this node's store. Every call
/// completes synchronously unless a push must wait for a checkpoint to let it in (the push gate, held for
/// milliseconds while FASTER moves to its next version).
/// </summary>
/// <param name="store">The node's store.</param>
/// <param name="workers">Whose leases data requests renew.</param>
/// <param name="limits">The node's request limits.</param>
public sealed class LocalDataPlane(ParamStore store, IWorkerDirectory workers, DataLimits limits) : IDataPlane
{
    /// <inheritdoc />
    public ValueTask<PushReply> PushAsync(TableHandle table, ReadOnlyMemory<byte> block, PushOptions options, CancellationToken cancellationToken)
    {
        ValueTask open = store.WhenPushGateOpenAsync(cancellationToken);
        if (!open.IsCompletedSuccessfully) return PushAfterGateAsync(open, table, block, options);
        return new(Push(table, block.Span, options));
    }

    private async ValueTask<PushReply> PushAfterGateAsync(ValueTask open, TableHandle table, ReadOnlyMemory<byte> block, PushOptions options)
    {
        await open.ConfigureAwait(false);
        return Push(table, block.Span, options);
    }

    /// <summary>
    /// Checks a push as <see cref="PushAsync"/> does before applying it (layout, dim, key bound, finite values, a
    /// clock's worker), without applying it or renewing a lease: what a router checks once before slicing.
    /// </summary>
    public bool TryCheckPush(TableHandle table, ReadOnlySpan<byte> block, PushOptions options, out KvBlock kv, out ProtocolError error)
    {
        if (!KvBlock.TryParse(block, KvExpect.Values, limits.MaxKeys, out kv, out error)
            || !RowRules.Check(table, kv.Dim, isPull: false, kv.Count, kv.LastKey(block), out error)
            || !RowRules.CheckFinite(table, kv.Values(block), kv.IsRange, kv.First, kv.IsRange ? default : kv.Keys(block), options.FromJson, out error))
            return false;
        if (options.Stamp.Clock != 0 && options.Stamp.Worker == 0)
        {
            error = DataErrors.ClockWithoutWorker(options.Stamp.Clock);
            return false;
        }
        return true;
    }

    private PushReply Push(TableHandle table, ReadOnlySpan<byte> block, PushOptions options)
    {
        WorkerStamp stamp = options.Stamp;
        if (!TryCheckPush(table, block, options, out KvBlock kv, out ProtocolError error)
            || !TryStamp(stamp, out error))
            return PushReply.Refused(error);
        PushOutcome outcome = kv.IsRange
            ? store.PushRange(table, kv.First, kv.Count, kv.Values(block), stamp, options.RangesVersion)
            : store.Push(table, kv.Keys(block), kv.Values(block), stamp, options.RangesVersion);
        return Finish(outcome, kv.Count, stamp);
    }

    /// <inheritdoc />
    public ValueTask<PushReply> TickAsync(TableHandle table, PushOptions options, CancellationToken cancellationToken)
    {
        ValueTask open = store.WhenPushGateOpenAsync(cancellationToken);
        if (!open.IsCompletedSuccessfully) return TickAfterGateAsync(open, table, options);
        return new(Tick(table, options));
    }

    private async ValueTask<PushReply> TickAfterGateAsync(ValueTask open, TableHandle table, PushOptions options)
    {
        await open.ConfigureAwait(false);
        return Tick(table, options);
    }

    private PushReply Tick(TableHandle table, PushOptions options) =>
        TryStamp(options.Stamp, out ProtocolError error) ? Finish(store.Tick(table, options.Stamp, options.RangesVersion), 0, options.Stamp) : PushReply.Refused(error);

    /// <summary>A clock needs its worker, and a push made for a worker renews its lease (an unknown worker is refused).</summary>
    private bool TryStamp(WorkerStamp stamp, out ProtocolError error)
    {
        if (stamp.Clock != 0 && stamp.Worker == 0)
        {
            error = DataErrors.ClockWithoutWorker(stamp.Clock);
            return false;
        }
        return TryTouch(stamp.Worker, out error);
    }

    private bool TryTouch(uint worker, out ProtocolError error)
    {
        error = default;
        if (worker == 0 || workers.Touch(worker)) return true;
        error = DataErrors.WorkerNotFound(worker);
        return false;
    }

    private static PushReply Finish(PushOutcome outcome, long rows, WorkerStamp stamp) => outcome.Status switch
    {
        PushStatus.WorkerNotFound => PushReply.Refused(DataErrors.WorkerNotFound(stamp.Worker)),   // removed between the touch and the push
        PushStatus.RangesChanged => PushReply.Refused(DataErrors.RangesChanged),
        _ => new PushReply(default, new PushResult(rows, outcome.Applied), outcome.Durable),
    };

    /// <inheritdoc />
    public bool TryPlanPull(TableHandle table, ReadOnlySpan<byte> block, PullOptions options, out KvBlock plan, out ProtocolError error)
    {
        plan = default;
        return TryTouch(options.Worker, out error)
            && KvBlock.TryParse(block, KvExpect.NoValues, limits.MaxKeys, out plan, out error)
            && RowRules.Check(table, plan.Dim, isPull: true, plan.Count, plan.LastKey(block), out error)
            && RowRules.CheckReplySize(table, plan.IsRange, plan.Count, limits.MaxReplyBytes, out _, out error);
    }

    /// <inheritdoc />
    public ValueTask<ClockWait> WaitAsync(TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PullOptions options, CancellationToken cancellationToken) =>
        WaitAsync(table, options.Consistency, options.Clock, options.Timeout, cancellationToken);

    /// <summary>Waits for the table's clocks on this node (see <see cref="IDataPlane.WaitAsync"/>).</summary>
    public ValueTask<ClockWait> WaitAsync(TableHandle table, Consistency consistency, ulong clock, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ulong target = consistency.Target(clock);
        if (target == 0) return new(new ClockWait(store.ClockMin(table), default, null, 0));
        ValueTask<ClockWaitResult> wait = store.WaitForClockAsync(table, target, timeout, cancellationToken);
        if (wait.IsCompletedSuccessfully) return new(ClockWaits.From(wait.Result, table, consistency, clock, target, timeout));
        return WaitSlowAsync(wait, table, consistency, clock, target, timeout);
    }

    private static async ValueTask<ClockWait> WaitSlowAsync(ValueTask<ClockWaitResult> wait, TableHandle table, Consistency consistency, ulong clock, ulong target, TimeSpan timeout) =>
        ClockWaits.From(await wait.ConfigureAwait(false), table, consistency, clock, target, timeout);

    /// <inheritdoc />
    public ValueTask<ClockWait> ReadAsync(TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PullOptions options, Memory<byte> destination, CancellationToken cancellationToken)
    {
        Read(table, block.Span, plan, destination.Span);
        return new(NothingElsewhere);
    }

    /// <summary>Reads a planned pull's rows from this node's store (see <see cref="IDataPlane.ReadAsync"/>).</summary>
    public void Read(TableHandle table, ReadOnlySpan<byte> block, in KvBlock plan, Span<byte> destination)
    {
        Span<float> rows = MemoryMarshal.Cast<byte, float>(destination);
        if (plan.IsRange) store.PullRange(table, plan.First, plan.Count, rows);
        else store.Pull(table, plan.Keys(block), rows);
    }

    /// <summary>A read with no part on another node: no error, no clock to merge.</summary>
    private static readonly ClockWait NothingElsewhere = new(ulong.MaxValue, default, null, 0);
}
