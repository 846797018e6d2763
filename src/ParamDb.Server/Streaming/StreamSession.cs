using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using ParamDb.Protocol;
using ParamDb.Server.Hosting;
using ParamDb.Server.Options;

namespace ParamDb.Server.Streaming;

/// <summary>
/// One <c>POST /v1/stream</c> request (docs/streaming.md): a reader loop that takes request frames in arrival
/// order and answers them, pulls parked while they wait for clocks, and a <see cref="ReplyWriter"/> that sends
/// the replies in whatever order they are ready.
/// </summary>
/// <remarks>
/// Ordering: pushes and ticks are applied by the reader loop one after another, so a worker's clocks reach the
/// store in the order it sent them; a pull that needs no wait is served by the reader loop too, after every
/// earlier push of the stream (a stream reads its own writes). A pull that must wait is parked on
/// <see cref="ParamDb.Storage.IDataPlane.WaitAsync"/> (no thread held) and answered when its clocks are reached, so its reply
/// may overtake or trail others: replies carry the request id.
/// <para>Ending: when the client ends its request body the reader stops, the parked pulls are still answered,
/// then the response ends. On server shutdown or a frame that cannot be delimited, parked pulls are cancelled and
/// answered 503, and a last reply with id 0 says why. When the client goes away everything is dropped: parked
/// waits cancelled, queued replies and their buffers returned.</para>
/// </remarks>
internal sealed partial class StreamSession : IDisposable
{
    private readonly HttpContext _context;
    private readonly StoreHost _host;
    private readonly NodeSettings _settings;
    private readonly StreamMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeSpan _waitTimeout;
    private readonly ReplyBudget _budget;
    private readonly ReplyWriter _writer;

    // _stop ends reading and parked waits (shutdown, a stream-level error, the client gone); _aborted only
    // the client gone, so replies to cancelled waits can still be written after _stop.
    private readonly CancellationTokenSource _stop;
    private readonly CancellationToken _aborted;
    private readonly CancellationToken _nodeStopping;
    private readonly CancellationToken _restoring;

    // The reader counts as one; each parked pull adds one. Zero means every reply has been queued.
    private int _pending = 1;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _waiting;
    private long _waitingBytes;
    private string _endReason = "the stream ended";

    public StreamSession(HttpContext context, StoreHost host, NodeSettings settings, StreamMetrics metrics, ILogger logger, TimeSpan waitTimeout, CancellationToken stopping, CancellationToken restoring)
    {
        _context = context;
        _host = host;
        _settings = settings;
        _metrics = metrics;
        _logger = logger;
        _waitTimeout = waitTimeout;
        _aborted = context.RequestAborted;
        _nodeStopping = stopping;
        _restoring = restoring;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(_aborted, stopping, restoring);
        _budget = new ReplyBudget(settings.StreamBufferBytes, metrics);
        _writer = new ReplyWriter(_budget, metrics);
    }

    /// <summary>Runs the stream until the request body ends and every request is answered, or the client is gone.</summary>
    public async Task RunAsync()
    {
        var response = _context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = MediaTypes.Stream;
        // Without this flush (docs/design.md, facts measured) the client sees no response headers and both sides wait for each other.
        await response.StartAsync(_aborted);
        await response.BodyWriter.FlushAsync(_aborted);

        _metrics.StreamOpened();
        Task writing = _writer.RunAsync(response.BodyWriter, _aborted);
        ProtocolError end = default;
        try
        {
            end = await ReadFramesAsync(_context.Request.BodyReader);
        }
        catch
        {
            // A fault in the reader itself: parked pulls must not outlive the session; Kestrel logs the rest.
            _stop.Cancel();
            throw;
        }
        finally
        {
            if (!end.IsNone)
            {
                _endReason = end.Status == 503 ? StopReason : "the stream had an unreadable frame";
                _stop.Cancel();
            }
            Leave();
            await _drained.Task;
            try
            {
                // Last, after every parked pull has been answered: nothing may follow a stream-level error.
                if (!end.IsNone && !_aborted.IsCancellationRequested) await ReplyErrorAsync(0, end, isReader: false);
            }
            catch (OperationCanceledException) when (_aborted.IsCancellationRequested)
            {
                // The client is gone; the writer drops what is queued.
            }
            _writer.Complete();
            await writing;
            if (!end.IsNone) await AwaitRequestEndAsync(_context.Request.BodyReader);
            _metrics.StreamClosed();
        }
    }

    /// <summary>The reader loop; returns the stream-level error that ends the stream, or none.</summary>
    private async Task<ProtocolError> ReadFramesAsync(PipeReader body)
    {
        var frames = new FrameReader(body, _settings.MaxBodyBytes);
        try
        {
            while (true)
            {
                IncomingFrame frame = await frames.ReadAsync(_stop.Token);
                switch (frame.Status)
                {
                    case FrameStatus.End:
                        return default;
                    case FrameStatus.StreamError:
                        return frame.Error;
                    case FrameStatus.Rejected:
                        _metrics.FrameRead();
                        await ReplyErrorAsync(frame.Header.RequestId, frame.Error, isReader: true);
                        if (frame.EndsStream) return default;
                        break;
                    default:
                        _metrics.FrameRead();
                        await DispatchAsync(frame);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested && !_aborted.IsCancellationRequested)
        {
            return _restoring.IsCancellationRequested && !_nodeStopping.IsCancellationRequested
                ? new ProtocolError(503, ProblemCodes.Unavailable, "The node is restoring a snapshot, which replaces its data: the stream ends here. Requests without a reply were not applied; open a new stream once the restore is done.")
                : new ProtocolError(503, ProblemCodes.Unavailable, "The node is stopping: the stream ends here. Requests without a reply were not applied; send them again to another node or after the restart.");
        }
        catch (Exception e) when (_aborted.IsCancellationRequested && e is OperationCanceledException or IOException or ConnectionAbortedException)
        {
            return default; // the client reset the stream or closed the connection
        }
        catch (BadHttpRequestException e)
        {
            return new ProtocolError(e.StatusCode, ProblemCodes.BadRequest, $"The request body could not be read: {e.Message}");
        }
    }

    /// <summary>
    /// How long a stream ended by the server waits for the client to end its request body after the id-0 reply:
    /// long enough for a client to read that reply, short enough not to hold a stopping node.
    /// </summary>
    internal static readonly TimeSpan RequestEndGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// After an id-0 reply, discards the rest of the request body until the client ends it (or resets the stream,
    /// or <see cref="RequestEndGrace"/> passes). Completing the response while the request is still open makes
    /// Kestrel reset the stream, and a stopping node then closes the connection: the client could lose the id-0
    /// reply that says why before reading it.
    /// </summary>
    private async Task AwaitRequestEndAsync(PipeReader body)
    {
        if (_aborted.IsCancellationRequested) return;
        using var grace = CancellationTokenSource.CreateLinkedTokenSource(_aborted);
        grace.CancelAfter(RequestEndGrace);
        try
        {
            while (true)
            {
                ReadResult result = await body.ReadAsync(grace.Token);
                body.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled) return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionAbortedException or BadHttpRequestException)
        {
            // The grace ran out or the client went away: the response ends now either way.
        }
    }

    /// <summary>Why parked pulls were cancelled, for their 503 replies.</summary>
    private string EndReason => _nodeStopping.IsCancellationRequested || _restoring.IsCancellationRequested ? StopReason : _endReason;

    private string StopReason => _restoring.IsCancellationRequested && !_nodeStopping.IsCancellationRequested ? "the node is restoring a snapshot" : "the node is stopping";

    /// <summary>One reader or parked pull is done; the last one releases <see cref="RunAsync"/>.</summary>
    private void Leave()
    {
        if (Interlocked.Decrement(ref _pending) == 0) _drained.TrySetResult();
    }

    /// <inheritdoc />
    public void Dispose() => _stop.Dispose();
}
