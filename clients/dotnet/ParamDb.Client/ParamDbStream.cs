using System.Net;
using System.Runtime.CompilerServices;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using static ParamDb.Client.Internal.BatchChecks;
using ParamDb.Client.Streaming;

namespace ParamDb.Client;

/// <summary>
/// Pipelined push, pull and tick over one HTTP/2 connection and one long <c>POST /v1/stream</c> (docs/streaming.md):
/// many requests in flight, replies matched by request id, in any order. The low-level half of
/// <see cref="ParamDbWorker"/>; use it directly for anonymous traffic or to stamp requests yourself.
/// <code>
/// await using var stream = await ParamDbStream.ConnectAsync(new Uri("http://127.0.0.1:7421"));
/// var push = stream.PushAsync("emb", keys, grads);           // sent at once; not yet awaited
/// float[] rows = await stream.PullAsync("emb", keys);          // sent after the push, so it sees it
/// PushResult pushed = await push;
/// </code>
/// </summary>
/// <remarks>
/// <para><b>Order.</b> Requests are sent in the order the calls are made (the call queues synchronously, before it
/// first awaits). The server applies pushes and ticks of one stream in arrival order, so a pull made after a push
/// sees it. At most <see cref="ParamDbStreamOptions.MaxInFlight"/> requests are on the wire; the rest wait in the
/// send queue, in order. Calls never block.</para>
/// <para><b>Buffers (zero-copy, as ps-lite's ZPush/ZPull).</b> Keys and values are not copied when you call: they
/// are read when the frame is written, and again if it is replayed, so they must not change until the returned
/// task completes. A pull's destination is written when its reply arrives; do not read or reuse it before the
/// task completes, and after a failed call its contents are unspecified.</para>
/// <para><b>Failures.</b> A refusal by the server (<see cref="ParamDbException"/>) fails that request only. When the
/// connection fails, the requests on the wire are sent again on a new stream, in their original order and with
/// the same (worker, clock) stamp, so a stamped push stays exactly-once; after
/// <see cref="ParamDbStreamOptions.MaxRetries"/> replays they fail with <see cref="IOException"/>. An anonymous push
/// (no stamp) is never replayed, since the server could not tell the replay from a new push: it fails with
/// <see cref="IOException"/> and may or may not have been applied. A stream-level error from the server fails every
/// request that was on the wire with that <see cref="ParamDbException"/>, except 503 (the node is stopping), which
/// is replayed like a lost connection.</para>
/// <para>Thread-safe. Every returned <see cref="ValueTask{T}"/> must be awaited exactly once.</para>
/// </remarks>
public sealed partial class ParamDbStream : IAsyncDisposable
{
    // After the body is ended on close, how long the server gets to answer and end the response.
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(2);

    private readonly HttpMessageInvoker _http;
    private readonly bool _ownsHttp;
    private readonly Uri _streamUri;
    private readonly ParamDbStreamOptions _options;
    private Task _supervisor = Task.CompletedTask;
    private Task? _disposal;

    private ParamDbStream(HttpMessageInvoker http, bool ownsHttp, Uri address, ParamDbStreamOptions options)
    {
        _http = http;
        _ownsHttp = ownsHttp;
        Address = address.AbsoluteUri.EndsWith('/') ? address : new Uri(address.AbsoluteUri + "/");
        _streamUri = new Uri(Address, "v1/stream");
        _options = options;
    }

    /// <summary>
    /// Opens a stream to the node's cleartext HTTP/2 address (<c>http://host:7421</c>, prior knowledge) on a
    /// connection of its own, and returns once the server has accepted it.
    /// </summary>
    /// <param name="address">The h2c base address; a path prefix is kept.</param>
    /// <param name="options">Limits, retries and compression; defaults when null.</param>
    /// <param name="cancellationToken">Cancels opening (not the stream once open).</param>
    /// <exception cref="ParamDbException">The server refused the stream.</exception>
    /// <exception cref="HttpRequestException">No HTTP/2 connection could be made (wrong port, server down).</exception>
    public static Task<ParamDbStream> ConnectAsync(Uri address, ParamDbStreamOptions? options = null, CancellationToken cancellationToken = default) =>
        OpenAsync(new HttpMessageInvoker(CreateHandler(), disposeHandler: true), ownsHttp: true, address, options, cancellationToken);

    /// <summary>The server's h2c address, ending in '/'.</summary>
    public Uri Address { get; }

    /// <summary>Opens a stream over <paramref name="http"/> (which the stream disposes if it owns it).</summary>
    internal static async Task<ParamDbStream> OpenAsync(HttpMessageInvoker http, bool ownsHttp, Uri address, ParamDbStreamOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (!address.IsAbsoluteUri) throw new ArgumentException($"The stream address must be absolute, like http://127.0.0.1:7421; got \"{address}\".", nameof(address));
        options ??= new ParamDbStreamOptions();
        options.Validate();
        var stream = new ParamDbStream(http, ownsHttp, address, options);
        try
        {
            var first = await StreamConnection.OpenAsync(stream, http, stream._streamUri, options, stream._stopping.Token, cancellationToken).ConfigureAwait(false);
            lock (stream._lock) stream._connection = first;
            stream._supervisor = stream.SuperviseAsync(first);
            return stream;
        }
        catch
        {
            if (ownsHttp) http.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A stream that connects when its first request is queued (a worker's stream to another node of a cluster):
    /// requests queue at once, in call order, and are written once the connection is up. A failed connect counts as
    /// one attempt of each queued request, as a lost connection does (<see cref="ParamDbStreamOptions.MaxRetries"/>);
    /// a refusal fails them.
    /// </summary>
    internal static ParamDbStream OpenLazily(Uri address, ParamDbStreamOptions options)
    {
        ArgumentNullException.ThrowIfNull(address);
        options.Validate();
        var stream = new ParamDbStream(new HttpMessageInvoker(CreateHandler(), disposeHandler: true), ownsHttp: true, address, options);
        stream._supervisor = stream.SuperviseAsync(null);
        return stream;
    }

    /// <summary>
    /// The handler for one HTTP/2 connection carrying the stream (and, for a worker, its REST calls): a 16 MiB
    /// stream window so a 4 MiB pull reply flows without waiting for window updates, and pings that notice a dead
    /// peer on a quiet connection.
    /// </summary>
    internal static SocketsHttpHandler CreateHandler() => new()
    {
        EnableMultipleHttp2Connections = false,
        InitialHttp2StreamWindowSize = 16 * 1024 * 1024,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        KeepAlivePingDelay = TimeSpan.FromSeconds(15),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
    };

    /// <summary>
    /// Pushes one row per key (<c>op 1</c>). Keys strictly ascending; values keys.Length × dim floats, row-major.
    /// With a stamp, a push at a clock the table has already seen from that worker is skipped (applied 0).
    /// </summary>
    /// <exception cref="ArgumentException">Keys not strictly ascending, or values not a whole number of rows.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>worker_not_found</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PushResult> PushAsync(string table, ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values,
        ClockStamp stamp = default, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        PendingRequest request = NewPush(table, keys, values, stamp, options);
        StreamReply reply = await SendAsync(request, options.Timeout, cancellationToken).ConfigureAwait(false);
        return new PushResult(reply.Rows, reply.Applied);
    }

    /// <summary>Pushes the dense range of rows first … first + values.Length / dim - 1.</summary>
    /// <exception cref="ArgumentException">Values not a whole number of rows, or the range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>key_out_of_range</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PushResult> PushRangeAsync(string table, ulong first, ReadOnlyMemory<float> values, int dim,
        ClockStamp stamp = default, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        CheckName(table);
        int count = RowCount(values.Length, dim, nameof(values));
        CheckRange(first, count);
        BlockSize(range: true, count, dim, values: true);
        PendingRequest request = NewRequest(StreamOp.Push, table, stamp, options);
        request.Range = true;
        request.First = first;
        request.Count = count;
        request.Dim = dim;
        request.Values = values;
        StreamReply reply = await SendAsync(request, options.Timeout, cancellationToken).ConfigureAwait(false);
        return new PushResult(reply.Rows, reply.Applied);
    }

    /// <summary>
    /// An empty push (<c>op 3</c>) that only advances <paramref name="stamp"/>'s worker to its clock on every range of
    /// the table, so consistent pulls stop waiting for it there.
    /// </summary>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>worker_not_found</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PushResult> TickAsync(string table, ClockStamp stamp, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        CheckName(table);
        PendingRequest request = NewRequest(StreamOp.Tick, table, stamp, options);
        StreamReply reply = await SendAsync(request, options.Timeout, cancellationToken).ConfigureAwait(false);
        return new PushResult(reply.Rows, reply.Applied);
    }

    /// <summary>
    /// Pulls the rows of <paramref name="keys"/> into <paramref name="destination"/> (keys.Length × dim floats, dim the
    /// table's), read from the connection straight into it. With a stamp and a consistency other than eventual, the
    /// server answers once every live worker has reached the clock the consistency asks for.
    /// </summary>
    /// <exception cref="ArgumentException">Keys not strictly ascending, or the destination not a whole number of rows.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>clock_wait_timeout</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PullResult> PullAsync(string table, ReadOnlyMemory<ulong> keys, Memory<float> destination,
        ClockStamp stamp = default, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        PendingRequest request = NewPull(table, keys, destination, allocate: false, stamp, options);
        StreamReply reply = await SendAsync(request, options.Timeout, cancellationToken).ConfigureAwait(false);
        return new PullResult(reply.Clock);
    }

    /// <summary>Pulls the rows of <paramref name="keys"/> into a new array of keys.Length × dim floats, at the table's dim.</summary>
    /// <exception cref="ArgumentException">Keys not strictly ascending.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>clock_wait_timeout</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<float[]> PullAsync(string table, ReadOnlyMemory<ulong> keys,
        ClockStamp stamp = default, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        PendingRequest request = NewPull(table, keys, Memory<float>.Empty, allocate: true, stamp, options);
        StreamReply reply = await SendAsync(request, options.Timeout, cancellationToken).ConfigureAwait(false);
        return reply.Values!;
    }

    /// <summary>Pulls the dense range of rows first … first + count - 1 into <paramref name="destination"/> (count × dim floats).</summary>
    /// <exception cref="ArgumentException">The destination is not a whole number of rows, or the range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>clock_wait_timeout</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PullResult> PullRangeAsync(string table, ulong first, int count, Memory<float> destination,
        ClockStamp stamp = default, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        PendingRequest request = NewPullRange(table, first, count, RowWidth(count, destination.Length, nameof(destination)), stamp, options);
        request.Destination = destination;
        StreamReply reply = await SendAsync(request, options.Timeout, cancellationToken).ConfigureAwait(false);
        return new PullResult(reply.Clock);
    }

    /// <summary>Pulls the dense range of rows first … first + count - 1 into a new array, at the table's dim.</summary>
    /// <exception cref="ArgumentException">The range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>clock_wait_timeout</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<float[]> PullRangeAsync(string table, ulong first, int count,
        ClockStamp stamp = default, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        PendingRequest request = NewPullRange(table, first, count, dim: 0, stamp, options);
        StreamReply reply = await SendAsync(request, options.Timeout, cancellationToken).ConfigureAwait(false);
        return reply.Values!;
    }

    /// <summary>
    /// Pushes <paramref name="values"/> and pulls the same keys into <paramref name="destination"/>, both sent back to
    /// back without waiting (ps-lite's PushPull): the pull is applied after the push, so it sees it. When the push
    /// is refused, its error is thrown (the pull still ran and left the destination filled with the unchanged rows).
    /// <paramref name="values"/> and <paramref name="destination"/> may not overlap.
    /// </summary>
    /// <exception cref="ArgumentException">Keys not ascending, or values/destination not keys.Length × dim.</exception>
    /// <exception cref="ParamDbException">The push's or the pull's refusal.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PushPullResult> PushPullAsync(string table, ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values, Memory<float> destination,
        ClockStamp stamp = default, ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        if (destination.Length != values.Length)
            throw new ArgumentException($"The destination holds {destination.Length} floats; the pushed rows are {values.Length}.", nameof(destination));
        PendingRequest push = NewPush(table, keys, values, stamp, options);
        PendingRequest pull = NewPull(table, keys, destination, allocate: false, stamp, options);
        using var deadline = Deadline(options.Timeout, cancellationToken, out CancellationToken token);
        Submit(push, token);
        Submit(pull, token);
        var pushed = new ValueTask<StreamReply>(push, push.Version);
        var pulled = new ValueTask<StreamReply>(pull, pull.Version);
        StreamReply pushReply;
        try
        {
            pushReply = await pushed.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            try
            {
                await pulled.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The push's failure is the one to report.
            }
            throw TimedOut(e, deadline, cancellationToken, options.Timeout);
        }
        StreamReply pullReply;
        try
        {
            pullReply = await pulled.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw TimedOut(e, deadline, cancellationToken, options.Timeout);
        }
        return new PushPullResult(new PushResult(pushReply.Rows, pushReply.Applied), new PullResult(pullReply.Clock));
    }

    /// <summary>
    /// Closes the stream: no new requests; waits up to <see cref="ParamDbStreamOptions.CloseTimeout"/> for the
    /// requests already made to be answered, ends the request body, and fails whatever is still unanswered with
    /// <see cref="ObjectDisposedException"/>.
    /// </summary>
    public ValueTask DisposeAsync()
    {
        // DisposeCoreAsync runs up to its first await under this (re-entrant) lock: a second call gets the same task.
        lock (_lock) _disposal ??= DisposeCoreAsync();
        return new ValueTask(_disposal);
    }

    private async Task DisposeCoreAsync()
    {
        Task drained;
        lock (_lock)
        {
            _closing = true;
            drained = _unfinished == 0 ? Task.CompletedTask : (_drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        await drained.WaitAsync(_options.CloseTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        bool wakeWriter, wakeSupervisor;
        lock (_lock)
        {
            _ending = true;
            wakeWriter = TakeWriterWaiting();
            wakeSupervisor = _supervisorWaiting;
            _supervisorWaiting = false;
        }
        if (wakeWriter) _writerSignal.Release();
        if (wakeSupervisor) _workSignal.Release();
        await _supervisor.WaitAsync(CloseGrace).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_supervisor.IsCompleted)
        {
            _stopping.Cancel();
            StreamConnection? connection;
            lock (_lock) connection = _connection;
            connection?.Abort(new ObjectDisposedException(nameof(ParamDbStream)));
            await _supervisor.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        _stopping.Cancel();
        FailRemaining();
        if (_ownsHttp) _http.Dispose();
    }
}
