namespace ParamDb.Cluster.Replication;

/// <summary>
/// Lets a batch wait for the pushes that are being applied when it is about to be taken, so their rows go in it
/// instead of the next one: group commit for replication. With four workers pushing the same 4,096 rows, a batch
/// taken the moment the first push marked its keys carried about two pushes' worth, and replication moved 0.56 of
/// the pushed bytes; waiting for the pushes already in the store lets one batch carry all of them. Pushes that
/// start after the wait began are not waited for (under steady load there is always one), and the wait is bounded
/// by the caller.
/// </summary>
internal sealed class ApplyBarrier
{
    private readonly Lock _sync = new();
    private readonly int[] _applying = new int[2];   // pushes in the store, by the generation they started in
    private int _generation;
    private TaskCompletionSource? _drain;

    /// <summary>A push enters the store; pass what this returns to <see cref="Exit"/> once it has left.</summary>
    public int Enter()
    {
        lock (_sync)
        {
            _applying[_generation]++;
            return _generation;
        }
    }

    /// <summary>A push left the store (its keys are marked, or it was refused).</summary>
    public void Exit(int generation)
    {
        TaskCompletionSource? drained = null;
        lock (_sync)
        {
            if (--_applying[generation] == 0 && generation != _generation && _drain is { } drain)
            {
                drained = drain;
                _drain = null;
            }
        }
        drained?.TrySetResult();
    }

    /// <summary>
    /// Completes once every push in the store now has left it; at once when there is none, or when one from an
    /// earlier wait is still inside (then a new generation cannot start, and nothing is waited for).
    /// </summary>
    public Task DrainAsync()
    {
        lock (_sync)
        {
            if (_drain is { } pending) return pending.Task;
            int now = _generation;
            if (_applying[now] == 0 || _applying[1 - now] != 0) return Task.CompletedTask;
            _generation = 1 - now;
            _drain = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _drain.Task;
        }
    }
}
