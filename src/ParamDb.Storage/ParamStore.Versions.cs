namespace ParamDb.Storage;

/// <summary>Clocked pushes, ticks, clock waits and workers (DESIGN.md §6). STUB: filled in next.</summary>
public sealed partial class ParamStore
{
    /// <summary>An empty push: advances the worker's clock on every range of the table.</summary>
    public PushOutcome Tick(TableHandle table, WorkerStamp stamp) => new(PushStatus.Ok, 0);

    /// <summary>The table's minimum clock over live workers.</summary>
    public ulong ClockMin(TableHandle table) => 0;

    /// <summary>Waits until every live worker of the table reached <paramref name="target"/>.</summary>
    public ValueTask<ClockWaitResult> WaitForClockAsync(TableHandle table, ulong target, TimeSpan timeout, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new ClockWaitResult(true, 0, []));
}
