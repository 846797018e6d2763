namespace ParamDb.Server.Hosting;

/// <summary>
/// Counts the requests using the store, so a restore can stop new ones and wait for the running ones before it
/// closes the store under them. A request holds the gate for its whole life (a stream included); while the gate
/// is closed, new requests wait for it to open again.
/// </summary>
/// <remarks>
/// A lock rather than lock-free counting: it is taken twice per request (not per row), uncontended almost always,
/// and it keeps the close/drain handshake obviously right.
/// </remarks>
public sealed class StoreGate
{
    private readonly Lock _sync = new();
    private int _active;
    private bool _closed;
    private TaskCompletionSource? _drained;
    private TaskCompletionSource _reopened = Completed();

    /// <summary>Requests inside the gate now.</summary>
    public int Active
    {
        get
        {
            lock (_sync) return _active;
        }
    }

    /// <summary>Enters the gate, waiting while it is closed; dispose the result when the request ends.</summary>
    public async ValueTask<Pass> EnterAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_sync)
            {
                if (!_closed)
                {
                    _active++;
                    return new Pass(this);
                }
                wait = _reopened.Task;
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Closes the gate; completes when every request inside has left.</summary>
    public Task CloseAsync()
    {
        lock (_sync)
        {
            if (_closed) throw new InvalidOperationException("The store gate is already closed.");
            _closed = true;
            _reopened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_active == 0) return Task.CompletedTask;
            _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _drained.Task;
        }
    }

    /// <summary>Opens the gate and lets the waiting requests in.</summary>
    public void Open()
    {
        TaskCompletionSource waiting;
        lock (_sync)
        {
            _closed = false;
            _drained = null;
            waiting = _reopened;
        }
        waiting.TrySetResult();
    }

    private void Leave()
    {
        TaskCompletionSource? done = null;
        lock (_sync)
        {
            if (--_active == 0 && _closed) done = _drained;
        }
        done?.TrySetResult();
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    /// <summary>One request's passage through the gate.</summary>
    public readonly struct Pass(StoreGate gate) : IDisposable
    {
        /// <summary>Leaves the gate.</summary>
        public void Dispose() => gate?.Leave();
    }
}

/// <summary>Endpoint metadata: the route does not use the live store, so it does not hold the gate (snapshot reads, the restore itself).</summary>
public sealed class OutsideStoreGate;
