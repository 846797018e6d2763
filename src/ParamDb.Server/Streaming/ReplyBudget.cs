namespace ParamDb.Server.Streaming;

/// <summary>
/// The bytes of replies one stream may hold in its queue (<c>--stream-buffer</c>). A reply reserves its size
/// before it is built and gives it back once the writer has flushed it to Kestrel, so a client that sends
/// without reading makes the server wait here instead of buffering without bound. A reply larger than the whole
/// budget still passes when the queue is empty, or it could never be sent: the queue holds at most
/// max(limit, the largest single reply).
/// </summary>
/// <remarks>Thread-safe: the reader loop and every released waiting pull reserve; the writer loop releases.
/// Waiters are served in arrival order, so a large reply is not starved by a run of small ones.</remarks>
internal sealed class ReplyBudget(long limit, StreamMetrics metrics)
{
    /// <summary>
    /// The least a reply is counted as: a 40-byte acknowledgement still costs a <c>PooledBuffer</c>, a rented
    /// array and a queue slot, ~200 bytes, so a queue of acks is bounded in memory, not only in payload bytes.
    /// </summary>
    public const int MinCharge = 256;

    private readonly object _gate = new();
    private readonly Queue<Waiter> _waiters = new();
    private long _used;

    /// <summary>Bytes reserved by replies not yet flushed.</summary>
    public long Used => Volatile.Read(ref _used);

    /// <summary>What a reply of <paramref name="bytes"/> is charged.</summary>
    public static long ChargeFor(long bytes) => Math.Max(bytes, MinCharge);

    /// <summary>
    /// Reserves <paramref name="charge"/> bytes (from <see cref="ChargeFor"/>), waiting while the queue is too
    /// full; <paramref name="isReader"/> marks the stream's reader loop, whose wait is what stops the stream
    /// being read (counted in <see cref="StreamMetrics"/>).
    /// </summary>
    public ValueTask ReserveAsync(long charge, bool isReader, CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_gate)
        {
            AdmitLocked();
            if (_waiters.Count == 0 && Fits(charge))
            {
                Take(charge);
                return ValueTask.CompletedTask;
            }
            waiter = new Waiter(charge);
            _waiters.Enqueue(waiter);
        }
        return WaitAsync(waiter, isReader, cancellationToken);
    }

    /// <summary>Gives back <paramref name="charge"/> bytes and admits the waiters that now fit.</summary>
    public void Release(long charge)
    {
        if (charge == 0) return;
        lock (_gate)
        {
            _used -= charge;
            metrics.AddQueued(-charge);
            AdmitLocked();
        }
    }

    private void AdmitLocked()
    {
        while (_waiters.TryPeek(out var next))
        {
            if (next.Completion.Task.IsCompleted)
            {
                _waiters.Dequeue(); // cancelled while waiting
                continue;
            }
            if (!Fits(next.Charge)) break;
            _waiters.Dequeue();
            // Taken under the lock before the waiter runs, so two releases cannot admit past the limit.
            if (next.Completion.TrySetResult()) Take(next.Charge);
        }
    }

    private void Cancel(Waiter waiter)
    {
        lock (_gate)
        {
            // A cancelled waiter at the head must not hold back the ones behind it that fit.
            if (waiter.Completion.TrySetCanceled()) AdmitLocked();
        }
    }

    private bool Fits(long charge) => _used == 0 || _used + charge <= limit;

    private void Take(long charge)
    {
        _used += charge;
        metrics.AddQueued(charge);
        metrics.ObservePeak(_used);
    }

    private async ValueTask WaitAsync(Waiter waiter, bool isReader, CancellationToken cancellationToken)
    {
        if (isReader) metrics.ReaderPaused(+1);
        try
        {
            await using var registration = cancellationToken.Register(static state =>
            {
                var (budget, w) = ((ReplyBudget, Waiter))state!;
                budget.Cancel(w);
            }, (this, waiter));
            await waiter.Completion.Task.ConfigureAwait(false);
        }
        finally
        {
            if (isReader) metrics.ReaderPaused(-1);
        }
    }

    private sealed class Waiter(long charge)
    {
        public long Charge { get; } = charge;

        // Continuations run on the thread pool: Release runs on the writer loop, which must not run a reader.
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
