using System.Net;
using System.Net.Http.Headers;
using System.Threading.Channels;
using System.Threading.Tasks.Sources;
using ParamDb.Client;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Client.Streaming;

namespace ParamDb.Bench;

/// <summary>
/// One <c>POST /v1/stream</c> on its own HTTP/2 connection, carrying prebuilt frames for a fixed number of
/// slots. Slot <c>s</c> always uses request id <c>s + 1</c> and has at most one request in flight, so a reply is
/// matched to its slot by id alone and nothing is allocated per request. Ids are the client's choice (docs/streaming.md):
/// the server only echoes them, so reusing one once its reply is in is fine.
/// </summary>
internal sealed class StreamTransport : IAsyncDisposable
{
    /// <summary>Frames up to this size are copied into the write batch; larger payloads go to the socket as they are.</summary>
    private const int BatchBytes = 64 * 1024;

    private readonly HttpClient _http;
    private readonly DuplexContent _content;
    private readonly HttpResponseMessage _response;
    private readonly Stream _requests;
    private readonly Stream _replies;
    private readonly Slot[] _slots;
    private readonly Channel<Outgoing> _outgoing = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions
    {
        SingleReader = true,
        AllowSynchronousContinuations = false,
    });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _writer;
    private readonly Task _reader;

    private StreamTransport(HttpClient http, DuplexContent content, HttpResponseMessage response, Stream requests, Stream replies, int slots)
    {
        _http = http;
        _content = content;
        _response = response;
        _requests = requests;
        _replies = replies;
        _slots = new Slot[slots];
        for (int i = 0; i < slots; i++) _slots[i] = new Slot();
        _writer = Task.Run(WriteLoopAsync);
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>The number of slots, that is, the most requests this stream has in flight.</summary>
    public int Slots => _slots.Length;

    /// <summary>Opens the stream on a connection of its own (an HTTP/2 connection's window is shared by its streams).</summary>
    public static async Task<StreamTransport> OpenAsync(Uri h2cAddress, int slots, CancellationToken cancellationToken)
    {
        var http = new HttpClient(new SocketsHttpHandler
        {
            // Replies of 4 MiB: with the default 64 KiB receive window every reply would stall on round trips.
            InitialHttp2StreamWindowSize = 16 * 1024 * 1024,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        var content = new DuplexContent();
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(h2cAddress, "v1/stream"))
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.Stream));
        Task<HttpResponseMessage> sending = http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        // A refusal (wrong port, HTTP/1.1) comes before the body is asked for: then only the send completes.
        if (await Task.WhenAny(content.RequestStream, sending) == sending) await EnsureOkAsync(await sending, cancellationToken);
        Stream requests = await content.RequestStream.WaitAsync(cancellationToken);
        // Sends the HEADERS frame now: without it the server never starts the response (docs/design.md#facts-measured-on-the-development-machine).
        await requests.FlushAsync(cancellationToken);
        HttpResponseMessage response = await sending;
        await EnsureOkAsync(response, cancellationToken);
        Stream replies = await response.Content.ReadAsStreamAsync(cancellationToken);
        return new StreamTransport(http, content, response, requests, replies, slots);
    }

    private static async Task EnsureOkAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.StatusCode == HttpStatusCode.OK) return;
        string body = await response.Content.ReadAsStringAsync(cancellationToken);
        throw new InvalidOperationException($"POST /v1/stream answered {(int)response.StatusCode}: {body}");
    }

    /// <summary>
    /// Sends <paramref name="header"/> (a frame's header and table name, with request id <c>slot + 1</c>) followed
    /// by <paramref name="payload"/>, and completes with the reply's payload length once the reply is read.
    /// </summary>
    public ValueTask<long> SendAsync(int slot, byte[] header, ReadOnlyMemory<byte> payload)
    {
        Slot s = _slots[slot];
        ValueTask<long> reply = s.Arm();
        if (!_outgoing.Writer.TryWrite(new Outgoing(header, payload)))
            s.Fail(new InvalidOperationException("The stream is closed."));
        return reply;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new byte[BatchBytes];
        int used = 0;
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(_stop.Token))
            {
                while (_outgoing.Reader.TryRead(out Outgoing frame))
                {
                    int size = frame.Header.Length + frame.Payload.Length;
                    if (used + size > BatchBytes && used > 0)
                    {
                        await _requests.WriteAsync(batch.AsMemory(0, used), _stop.Token);
                        used = 0;
                    }
                    if (size <= BatchBytes)
                    {
                        frame.Header.CopyTo(batch, used);
                        frame.Payload.Span.CopyTo(batch.AsSpan(used + frame.Header.Length));
                        used += size;
                        continue;
                    }
                    // A large frame: its header alone, then the payload straight from the caller's memory.
                    await _requests.WriteAsync(frame.Header, _stop.Token);
                    await _requests.WriteAsync(frame.Payload, _stop.Token);
                }
                if (used > 0)
                {
                    await _requests.WriteAsync(batch.AsMemory(0, used), _stop.Token);
                    used = 0;
                }
                await _requests.FlushAsync(_stop.Token);
            }
        }
        catch (Exception e)
        {
            FailAll(e);
        }
    }

    private async Task ReadLoopAsync()
    {
        var replies = new ReplyBuffer(_replies, _stop.Token);
        try
        {
            while (true)
            {
                if (!await replies.FillAsync(StreamReplyHeader.Size))
                {
                    FailAll(new InvalidOperationException("The server ended the stream."));
                    return;
                }
                if (!StreamReplyHeader.TryParse(replies.Buffered(StreamReplyHeader.Size), out var header, out string? error))
                    throw new InvalidDataException($"Unreadable reply header: {error}");
                replies.Consume(StreamReplyHeader.Size);
                long payload = header.PayloadLength;
                string? problem = null;
                if (header.Status != 200)
                {
                    // Problem JSON: small, read it whole for the message.
                    if (!await replies.FillAsync((int)payload)) throw new EndOfStreamException("The stream ended inside a problem reply.");
                    problem = System.Text.Encoding.UTF8.GetString(replies.Buffered((int)payload));
                }
                await replies.SkipAsync(payload);
                ulong id = header.RequestId;
                if (id == 0 || id > (ulong)_slots.Length)
                    throw new InvalidOperationException($"Reply for request id {id}: {problem ?? "unexpected"}");
                Slot slot = _slots[(int)id - 1];
                if (problem is not null) slot.Fail(new InvalidOperationException($"Request {id} answered {header.Status}: {problem}"));
                else slot.Complete(payload);
            }
        }
        catch (Exception e)
        {
            FailAll(e);
        }
    }

    /// <summary>
    /// The reply side's read buffer: big enough for a 4 MiB pull reply in a few reads. Headers and problems are
    /// parsed from it; pull payloads are read through it and dropped, as a client decoding them would copy them once.
    /// </summary>
    private sealed class ReplyBuffer(Stream source, CancellationToken cancellationToken)
    {
        private readonly byte[] _buffer = new byte[1 << 20];
        private int _start, _end;

        /// <summary>Reads until <paramref name="count"/> bytes are buffered; false when the stream ends first.</summary>
        public async ValueTask<bool> FillAsync(int count)
        {
            if (_end - _start >= count) return true;
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
            while (_end < count)
            {
                int n = await source.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
                if (n == 0) return false;
                _end += n;
            }
            return true;
        }

        public ReadOnlySpan<byte> Buffered(int count) => _buffer.AsSpan(_start, count);

        public void Consume(int count) => _start += count;

        /// <summary>Reads past <paramref name="count"/> bytes.</summary>
        public async ValueTask SkipAsync(long count)
        {
            while (count > 0)
            {
                if (_start == _end)
                {
                    _start = 0;
                    _end = await source.ReadAsync(_buffer, cancellationToken);
                    if (_end == 0) throw new EndOfStreamException("The stream ended inside a reply.");
                }
                int take = (int)Math.Min(count, _end - _start);
                _start += take;
                count -= take;
            }
        }
    }

    private void FailAll(Exception e)
    {
        _outgoing.Writer.TryComplete();
        foreach (Slot slot in _slots) slot.Fail(e);
    }

    /// <summary>Ends the request body, waits for the server to end the response, and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        _outgoing.Writer.TryComplete();
        await _writer;
        _content.Complete();
        // Bounded: a server that does not end the response in time is cut off.
        _stop.CancelAfter(TimeSpan.FromSeconds(5));
        await _reader;
        _stop.Cancel();
        _response.Dispose();
        _http.Dispose();
        _stop.Dispose();
    }

    private readonly record struct Outgoing(byte[] Header, ReadOnlyMemory<byte> Payload);

    /// <summary>One request id's reusable completion: armed before each send, completed by the reader.</summary>
    private sealed class Slot : IValueTaskSource<long>
    {
        private ManualResetValueTaskSourceCore<long> _core;
        private int _armed;

        public ValueTask<long> Arm()
        {
            if (Interlocked.Exchange(ref _armed, 1) == 1)
                throw new InvalidOperationException("A slot has one request in flight at a time.");
            _core.Reset();
            return new ValueTask<long>(this, _core.Version);
        }

        public void Complete(long payloadLength)
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1) _core.SetResult(payloadLength);
        }

        public void Fail(Exception e)
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1) _core.SetException(e);
        }

        public long GetResult(short token) => _core.GetResult(token);
        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }

    /// <summary>A frame's header and table name for <paramref name="slot"/>'s request id.</summary>
    public static byte[] Header(int slot, StreamOp op, byte[] tableUtf8, long payloadLength)
    {
        var header = new byte[StreamRequestHeader.Size + StreamRequestHeader.Pad8(tableUtf8.Length)];
        int written = StreamRequestHeader.Write(header, (ulong)slot + 1, op, StreamFrameFlags.None, tableUtf8, worker: 0, staleness: -1, clock: 0, payloadLength);
        if (written != header.Length) throw new InvalidOperationException("Unexpected stream header size.");
        return header;
    }
}
