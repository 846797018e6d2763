using ParamDb.Protocol.Stream;
using ParamDb.Client.Streaming;

namespace ParamDb.Client;

// Recovery: one supervisor keeps a connection while there is work, and after a connection ends decides, per
// request that was on the wire, whether it is replayed (in send order, in front of the queue) or fails.
public sealed partial class ParamDbStream
{
    /// <summary>
    /// Keeps one connection running while there is work: reconnects after a failure (with backoff) and replays
    /// what was on the wire. Ends when the stream closes.
    /// </summary>
    private async Task SuperviseAsync(StreamConnection? connection)
    {
        int failures = 0;
        while (true)
        {
            if (connection is null)
            {
                if (!await WaitForWorkAsync().ConfigureAwait(false)) return;
                if (failures > 0)
                {
                    try
                    {
                        await Task.Delay(Backoff(failures), _stopping.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
                try
                {
                    connection = await StreamConnection.OpenAsync(this, _http, _streamUri, _options, _stopping.Token, CancellationToken.None).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    failures++;
                    // A refusal with a status will not change by retrying; a transport failure might.
                    FailQueued(e, countsAsAttempt: e is not ParamDbException);
                    continue;
                }
                lock (_lock)
                {
                    _connection = connection;
                    _writerWaiting = false;
                }
            }
            ConnectionEnd end = await connection.RunAsync().ConfigureAwait(false);
            connection = null;
            AfterConnection(end);
            failures = end.Kind == ConnectionEndKind.Closed ? 0 : failures + 1;
        }
    }

    /// <summary>Waits until something is queued; false when the stream is closing.</summary>
    private async Task<bool> WaitForWorkAsync()
    {
        while (true)
        {
            lock (_lock)
            {
                if (_ending) return false;
                if (_queue.Count > 0) return true;
                _supervisorWaiting = true;
            }
            try
            {
                await _workSignal.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    private TimeSpan Backoff(int failures)
    {
        double factor = Math.Pow(2, Math.Min(failures - 1, 30));
        return TimeSpan.FromTicks((long)Math.Min(_options.RetryBackoff.Ticks * factor, _options.MaxRetryBackoff.Ticks));
    }

    /// <summary>
    /// After a connection ended: what was on the wire is replayed (in front of the queue, in send order) or, past
    /// MaxRetries, after a stream-level error, or when closing, failed.
    /// </summary>
    private void AfterConnection(ConnectionEnd end)
    {
        var completions = new List<(PendingRequest Request, Exception Error)>();
        lock (_lock)
        {
            _connection = null;
            _writerWaiting = false;
            if (_onWire.Count > 0)
            {
                var sent = new List<PendingRequest>(_onWire.Values);
                _onWire.Clear();
                sent.Sort(static (a, b) => a.Id.CompareTo(b.Id));
                var replay = new Queue<PendingRequest>(sent.Count + _queue.Count);
                // A node that is stopping ends its streams with a 503 at id 0: like a lost connection, worth a replay.
                bool fatal = end.Kind == ConnectionEndKind.StreamError && end.Error is not ParamDbException { Status: 503 };
                foreach (PendingRequest request in sent)
                {
                    Exception? error = request.CancelRequested ? new OperationCanceledException(request.Token)
                        : fatal ? end.Error
                        : _ending ? new ObjectDisposedException(nameof(ParamDbStream), "The stream closed before this request was answered.")
                        : IsAnonymousPush(request) ? NotReplayed(end.Error)
                        : ++request.Attempts > _options.MaxRetries ? Lost(request, end.Error)
                        : null;
                    if (error is null)
                    {
                        request.State = RequestState.Queued;
                        request.AddReference(); // the queue's, again
                        replay.Enqueue(request);
                    }
                    else
                    {
                        EndLocked(request);
                        completions.Add((request, error));
                    }
                }
                foreach (PendingRequest queued in _queue) replay.Enqueue(queued);
                _queue = replay;
            }
        }
        foreach (var (request, error) in completions) request.Fail(error);
    }

    /// <summary>After a failed connect: queued requests count an attempt (transport) or fail outright (a refusal).</summary>
    private void FailQueued(Exception error, bool countsAsAttempt)
    {
        var completions = new List<(PendingRequest Request, Exception Error)>();
        lock (_lock)
        {
            foreach (PendingRequest request in _queue)
            {
                if (request.State != RequestState.Queued) continue;
                if (countsAsAttempt && ++request.Attempts <= _options.MaxRetries) continue;
                EndLocked(request); // stays in the queue, Done; the next writer releases it
                completions.Add((request, countsAsAttempt ? Lost(request, error) : error));
            }
        }
        foreach (var (request, e) in completions) request.Fail(e);
    }

    /// <summary>
    /// A push without a (worker, clock) stamp: the server cannot tell its replay from a new push, so replaying it
    /// could apply it twice. It fails instead; whether it was applied is unknown.
    /// </summary>
    private static bool IsAnonymousPush(PendingRequest request) =>
        request.Op == StreamOp.Push && (request.Stamp.Worker == 0 || request.Stamp.Clock == 0);

    private IOException NotReplayed(Exception? cause) =>
        new($"The stream to {_streamUri} failed with this push unanswered; it may or may not have been applied. It is not " +
            "sent again because it carries no (worker, clock) stamp that would make a replay exactly-once.", cause);

    private IOException Lost(PendingRequest request, Exception? cause) =>
        new($"The stream to {_streamUri} failed {request.Attempts} time(s) with this request unanswered " +
            $"(MaxRetries is {_options.MaxRetries}): {cause?.Message}", cause);

    /// <summary>Fails everything not yet answered (at the end of <see cref="DisposeAsync"/>) and releases the queue.</summary>
    private void FailRemaining()
    {
        var completions = new List<PendingRequest>();
        lock (_lock)
        {
            foreach (PendingRequest request in _onWire.Values)
            {
                EndLocked(request);
                completions.Add(request);
            }
            _onWire.Clear();
            while (_queue.TryDequeue(out var request))
            {
                if (request.State == RequestState.Queued)
                {
                    EndLocked(request);
                    completions.Add(request);
                }
                request.Release();
            }
        }
        foreach (PendingRequest request in completions)
            request.Fail(new ObjectDisposedException(nameof(ParamDbStream), "The stream closed before this request was answered."));
    }
}
