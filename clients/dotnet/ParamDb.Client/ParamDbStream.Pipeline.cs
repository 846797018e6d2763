using ParamDb.Client.Streaming;

namespace ParamDb.Client;

/// <summary>What the writer loop should do next.</summary>
internal enum WriterStep
{
    /// <summary>Requests were taken: write them.</summary>
    Took,
    /// <summary>Nothing to write now: flush and wait for work or room.</summary>
    Wait,
    /// <summary>Closing and the queue is empty: flush and end the body.</summary>
    End,
    /// <summary>This connection is no longer the stream's: stop.</summary>
    Stop,
}

// The pipeline: one send queue in call order, one table of requests on the wire, one connection at a time.
// Every field below is guarded by _lock; completions (which run user code on the thread pool) happen outside it.
//
// A request's path: Submit → queue (Queued) → writer takes it (Writing, on the wire table) → written (Sent) →
// reader takes it (Reading) → Done. Cancellation ends it wherever it is, except while the writer reads the
// caller's memory (then it ends right after) or the reader fills its destination (then the reply wins).
// When a connection fails, everything on the wire table goes back to the front of the queue in id order —
// which is send order — so replays reach the server in the order the calls were made, before anything newer.
public sealed partial class ParamDbStream
{
    private readonly object _lock = new();
    private Queue<PendingRequest> _queue = new();
    private readonly Dictionary<ulong, PendingRequest> _onWire = new();
    private ulong _lastId;
    private int _unfinished;
    private StreamConnection? _connection;
    private bool _writerWaiting;
    private readonly SemaphoreSlim _writerSignal = new(0);
    private bool _supervisorWaiting;
    private readonly SemaphoreSlim _workSignal = new(0);
    private bool _closing;
    private bool _ending;
    private TaskCompletionSource? _drained;
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>True once <see cref="DisposeAsync"/> has told the writer to end the body.</summary>
    internal bool IsEnding
    {
        get { lock (_lock) return _ending; }
    }

    /// <summary>
    /// Queues a request, synchronously, so calls reach the server in the order they were made. Never throws:
    /// a request that cannot be sent completes with its error.
    /// </summary>
    private void Submit(PendingRequest request, CancellationToken token)
    {
        request.Owner = this;
        request.Token = token;
        request.State = RequestState.New;
        // Registered before the request is visible to the loops, so a completion always sees the registration.
        if (token.CanBeCanceled) request.Registration = token.UnsafeRegister(static s => ((PendingRequest)s!).Owner!.Cancel((PendingRequest)s!), request);
        Exception? refused = null;
        bool wakeWriter = false, wakeSupervisor = false;
        lock (_lock)
        {
            if (_closing) refused = new ObjectDisposedException(nameof(ParamDbStream), "The stream is closing; no new requests are sent.");
            else if (request.CancelRequested) refused = new OperationCanceledException(token);
            if (refused is not null)
            {
                request.State = RequestState.Done;
            }
            else
            {
                request.Id = ++_lastId;
                request.State = RequestState.Queued;
                request.AddReference(); // the queue's
                _queue.Enqueue(request);
                _unfinished++;
                wakeWriter = TakeWriterWaiting();
                if (_connection is null && _supervisorWaiting)
                {
                    _supervisorWaiting = false;
                    wakeSupervisor = true;
                }
            }
        }
        if (refused is not null) request.Fail(refused);
        if (wakeWriter) _writerSignal.Release();
        if (wakeSupervisor) _workSignal.Release();
    }

    /// <summary>Cancels a request wherever it is (the token's callback).</summary>
    private void Cancel(PendingRequest request)
    {
        bool complete = false, wakeWriter = false;
        lock (_lock)
        {
            switch (request.State)
            {
                case RequestState.New:
                case RequestState.Writing:
                    // Submit refuses it / the writer ends it once it has stopped reading the caller's memory.
                    request.CancelRequested = true;
                    break;
                case RequestState.Queued:
                    // The queue still holds it; the writer skips and releases it.
                    complete = true;
                    break;
                case RequestState.Sent:
                    _onWire.Remove(request.Id);
                    wakeWriter = TakeWriterWaiting();
                    complete = true;
                    break;
            }
            if (complete) EndLocked(request);
        }
        if (wakeWriter) _writerSignal.Release();
        if (complete) request.Fail(new OperationCanceledException(request.Token));
    }

    /// <summary>The writer takes up to <paramref name="max"/> requests, as long as fewer than MaxInFlight are on the wire.</summary>
    internal WriterStep TakeForWrite(StreamConnection connection, List<PendingRequest> taken, int max)
    {
        lock (_lock)
        {
            if (_connection != connection) return WriterStep.Stop;
            while (taken.Count < max && _onWire.Count < _options.MaxInFlight && _queue.TryDequeue(out var request))
            {
                if (request.State == RequestState.Done)
                {
                    request.Release(); // cancelled or failed while queued
                    continue;
                }
                request.State = RequestState.Writing;
                _onWire[request.Id] = request;
                taken.Add(request); // the queue's reference is now the writer's
            }
            if (taken.Count > 0) return WriterStep.Took;
            if (_ending && _queue.Count == 0) return WriterStep.End;
            _writerWaiting = true;
            return WriterStep.Wait;
        }
    }

    /// <summary>The writer has read these requests' memory; cancellations that came meanwhile take effect now.</summary>
    internal void MarkWritten(List<PendingRequest> written)
    {
        List<PendingRequest>? cancelled = null;
        lock (_lock)
        {
            foreach (PendingRequest request in written)
            {
                if (request.State != RequestState.Writing) continue; // answered early (an error before the body was read)
                if (!request.CancelRequested)
                {
                    request.State = RequestState.Sent;
                    continue;
                }
                _onWire.Remove(request.Id);
                EndLocked(request);
                (cancelled ??= []).Add(request);
            }
        }
        if (cancelled is null) return;
        foreach (PendingRequest request in cancelled) request.Fail(new OperationCanceledException(request.Token));
    }

    /// <summary>Waits until the writer was woken by new work, room on the wire, or closing.</summary>
    internal Task WaitForWriterWorkAsync(CancellationToken cancellationToken) => _writerSignal.WaitAsync(cancellationToken);

    /// <summary>The reader claims the request a reply is for; null when nobody waits for it any more.</summary>
    internal PendingRequest? TakeForReply(ulong id)
    {
        PendingRequest? request;
        bool wakeWriter;
        lock (_lock)
        {
            if (!_onWire.Remove(id, out request)) return null;
            request.State = RequestState.Reading;
            wakeWriter = TakeWriterWaiting();
        }
        if (wakeWriter) _writerSignal.Release();
        return request;
    }

    /// <summary>The reader completes a claimed request.</summary>
    internal void Finish(PendingRequest request, ReplyOutcome outcome)
    {
        lock (_lock) EndLocked(request);
        if (outcome.Error is null) request.Complete(outcome.Reply);
        else request.Fail(outcome.Error);
    }

    /// <summary>The stream broke while the reader held this request: it goes back on the wire table, to be replayed.</summary>
    internal void ReturnToWire(PendingRequest request)
    {
        lock (_lock)
        {
            request.State = RequestState.Sent;
            _onWire[request.Id] = request;
        }
    }

    /// <summary>Marks a request Done and counts it out; under the lock.</summary>
    private void EndLocked(PendingRequest request)
    {
        request.State = RequestState.Done;
        if (--_unfinished == 0) _drained?.TrySetResult();
    }

    private bool TakeWriterWaiting()
    {
        if (!_writerWaiting || _connection is null) return false;
        _writerWaiting = false;
        return true;
    }
}
