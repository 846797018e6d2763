using System.Globalization;
using System.Net;
using System.Text.Json;
using ParamDb.Protocol;
using ParamDb.Client.Internal;

namespace ParamDb.Client.Streaming;

/// <summary>How a connection ended.</summary>
internal enum ConnectionEndKind
{
    /// <summary>The client ended the body and the server then ended the response: a clean close.</summary>
    Closed,
    /// <summary>The transport failed or the server went away: requests on the wire may be replayed.</summary>
    Failed,
    /// <summary>The server reported a stream-level error (request id 0) and ended the stream.</summary>
    StreamError,
}

/// <summary>Why a connection ended, with the error when it did not close cleanly.</summary>
internal readonly record struct ConnectionEnd(ConnectionEndKind Kind, Exception? Error);

/// <summary>
/// One <c>POST /v1/stream</c> on the HTTP/2 connection: a writer loop sends what the owning
/// <see cref="ParamDbStream"/> queues, a reader loop completes requests as their replies arrive. When either loop
/// fails, the other is aborted and <see cref="RunAsync"/> reports how it ended; the owner decides what is replayed.
/// </summary>
internal sealed class StreamConnection
{
    private const int TakeBatch = 32;

    private readonly ParamDbStream _owner;
    private readonly DuplexContent _content;
    private readonly HttpResponseMessage _response;
    private readonly Stream _requestBody;
    private readonly Stream _responseBody;
    private readonly CancellationTokenSource _abort;

    private StreamConnection(ParamDbStream owner, DuplexContent content, HttpResponseMessage response, Stream requestBody, Stream responseBody, CancellationTokenSource abort)
    {
        _owner = owner;
        _content = content;
        _response = response;
        _requestBody = requestBody;
        _responseBody = responseBody;
        _abort = abort;
    }

    /// <summary>
    /// Opens the stream: sends the request headers at once (the body stays open), and waits for the response
    /// headers. A refusal with a status (404, 400…) throws <see cref="ParamDbException"/>; a transport failure or
    /// the connect timeout throws <see cref="IOException"/> or <see cref="HttpRequestException"/>.
    /// </summary>
    /// <param name="owner">The stream whose queue this connection serves.</param>
    /// <param name="http">The HTTP/2 connection's handler.</param>
    /// <param name="streamUri">The <c>/v1/stream</c> address.</param>
    /// <param name="options">Connect timeout and the clock-wait timeout header.</param>
    /// <param name="lifetime">Ends the connection whenever it is cancelled (the stream stopping).</param>
    /// <param name="cancellationToken">Cancels opening only.</param>
    public static async Task<StreamConnection> OpenAsync(ParamDbStream owner, HttpMessageInvoker http, Uri streamUri, ParamDbStreamOptions options, CancellationToken lifetime, CancellationToken cancellationToken)
    {
        var content = new DuplexContent();
        var request = new HttpRequestMessage(HttpMethod.Post, streamUri)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        if (options.Headers is { } headers)
            foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
        if (options.ClockWaitTimeout is { } wait)
            request.Headers.TryAddWithoutValidation(ParamDbHeaders.TimeoutMs, ((long)Math.Ceiling(wait.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture));
        var abort = CancellationTokenSource.CreateLinkedTokenSource(lifetime);
        using var connect = CancellationTokenSource.CreateLinkedTokenSource(abort.Token, cancellationToken);
        connect.CancelAfter(options.ConnectTimeout);
        HttpResponseMessage? response = null;
        try
        {
            Task<HttpResponseMessage> send = http.SendAsync(request, abort.Token);
            // The server may refuse before it asks for the body (wrong path, HTTP/1.1 port): then only send completes.
            Task first = await Task.WhenAny(content.RequestStream, send).WaitAsync(connect.Token).ConfigureAwait(false);
            if (first == send)
            {
                HttpResponseMessage early = await send.ConfigureAwait(false);
                if (early.StatusCode != HttpStatusCode.OK) throw await RefusalAsync(early, connect.Token).ConfigureAwait(false);
            }
            Stream requestBody = await content.RequestStream.WaitAsync(connect.Token).ConfigureAwait(false);
            // Sends the HEADERS frame now: without it the server never starts the response (docs/design.md#facts-measured-on-the-development-machine).
            await requestBody.FlushAsync(connect.Token).ConfigureAwait(false);
            response = await send.WaitAsync(connect.Token).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK) throw await RefusalAsync(response, connect.Token).ConfigureAwait(false);
            Stream responseBody = await response.Content.ReadAsStreamAsync(connect.Token).ConfigureAwait(false);
            return new StreamConnection(owner, content, response, requestBody, responseBody, abort);
        }
        catch (Exception e)
        {
            abort.Cancel();
            content.Abort(e);
            response?.Dispose();
            request.Dispose();
            abort.Dispose();
            if (e is OperationCanceledException && connect.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                throw new IOException($"Opening the stream at {streamUri} took longer than {options.ConnectTimeout.TotalSeconds:0.#} s.", e);
            throw;
        }
    }

    /// <summary>Runs both loops until the connection ends; never throws.</summary>
    public async Task<ConnectionEnd> RunAsync()
    {
        Task writer = WriteLoopAsync();
        Task<ConnectionEnd> reader = ReadLoopAsync();
        ConnectionEnd end;
        if (await Task.WhenAny(writer, reader).ConfigureAwait(false) == writer && writer.IsCompletedSuccessfully)
        {
            // The writer ended the body (closing): the server answers what is on the wire, then ends the response.
            end = await reader.ConfigureAwait(false);
        }
        else if (writer.IsCompleted && !writer.IsCompletedSuccessfully)
        {
            Exception error = writer.Exception?.InnerException ?? new OperationCanceledException("The stream's writer stopped.");
            Abort(error);
            await reader.ConfigureAwait(false);
            end = new ConnectionEnd(ConnectionEndKind.Failed, error);
        }
        else
        {
            end = await reader.ConfigureAwait(false);
        }
        Abort(end.Error ?? new IOException("The stream closed."));
        try
        {
            await writer.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Aborted on purpose; the reader's end is the one that counts.
        }
        _response.Dispose();
        _abort.Dispose();
        return end;
    }

    /// <summary>Resets the HTTP/2 stream and stops both loops.</summary>
    public void Abort(Exception reason)
    {
        try
        {
            _abort.Cancel();
        }
        catch (ObjectDisposedException)
        {
            return; // already over
        }
        _content.Abort(reason);
    }

    private async Task WriteLoopAsync()
    {
        var taken = new List<PendingRequest>(TakeBatch);
        using var frames = new RequestFrameWriter(_requestBody);
        try
        {
            while (true)
            {
                WriterStep step = _owner.TakeForWrite(this, taken, TakeBatch);
                if (step == WriterStep.Took)
                {
                    foreach (PendingRequest request in taken) await frames.WriteAsync(request, _abort.Token).ConfigureAwait(false);
                    _owner.MarkWritten(taken);
                    ReleaseAll(taken);
                    continue;
                }
                // Nothing more to send now (queue empty, or MaxInFlight on the wire): what is batched goes out.
                await frames.FlushAsync(_abort.Token).ConfigureAwait(false);
                if (step == WriterStep.End)
                {
                    _content.Complete();
                    return;
                }
                if (step == WriterStep.Stop) return;
                await _owner.WaitForWriterWorkAsync(_abort.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            // Requests taken but not written stay on the wire table as Writing; the owner replays them.
            ReleaseAll(taken);
        }
    }

    private static void ReleaseAll(List<PendingRequest> taken)
    {
        foreach (PendingRequest request in taken) request.Release();
        taken.Clear();
    }

    private async Task<ConnectionEnd> ReadLoopAsync()
    {
        using var replies = new ReplyReader(_responseBody, _abort.Token);
        PendingRequest? current = null;
        try
        {
            while (true)
            {
                if (!await replies.NextHeaderAsync().ConfigureAwait(false))
                {
                    return _owner.IsEnding
                        ? new ConnectionEnd(ConnectionEndKind.Closed, null)
                        : new ConnectionEnd(ConnectionEndKind.Failed, new IOException("The server ended the stream."));
                }
                ulong id = replies.Header.RequestId;
                if (id == 0)
                {
                    ParamDbException error = await replies.ReadStreamErrorAsync().ConfigureAwait(false);
                    return new ConnectionEnd(ConnectionEndKind.StreamError, error);
                }
                current = _owner.TakeForReply(id);
                if (current is null)
                {
                    await replies.SkipPayloadAsync().ConfigureAwait(false);
                    continue;
                }
                ReplyOutcome outcome = await replies.ReadPayloadAsync(current).ConfigureAwait(false);
                PendingRequest done = current;
                current = null;
                _owner.Finish(done, outcome);
            }
        }
        catch (Exception e)
        {
            // The reply being read when the stream broke goes back on the wire table, to be replayed.
            if (current is not null) _owner.ReturnToWire(current);
            return new ConnectionEnd(ConnectionEndKind.Failed, e);
        }
    }

    /// <summary>A refused stream request as <see cref="ParamDbException"/>, read from its problem JSON when there is one.</summary>
    private static async Task<ParamDbException> RefusalAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        using (response)
        {
            int status = (int)response.StatusCode;
            ProblemReply? problem = null;
            string? mediaType = response.Content.Headers.ContentType?.MediaType;
            if (mediaType is MediaTypes.Problem or MediaTypes.Json)
            {
                try
                {
                    await using Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                    problem = await JsonSerializer.DeserializeAsync(body, ProtocolJson.Default.ProblemReply, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is JsonException or IOException or HttpRequestException)
                {
                    // The status alone still says what happened.
                }
            }
            return ParamDbException.From(status, problem, $"The server refused to open a stream: {response.ReasonPhrase}.");
        }
    }
}
