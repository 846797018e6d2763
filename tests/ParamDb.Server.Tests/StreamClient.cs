using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ParamDb.Client;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Testing;
using ParamDb.Client.Streaming;

namespace ParamDb.Server.Tests;

/// <summary>
/// A raw <c>POST /v1/stream</c> over HTTP/2 (docs/design.md#facts-measured-on-the-development-machine): HttpClient at version 2.0 exact, a request content
/// that hands out its stream (flushed at once so the headers go out), and the response read as it arrives.
/// </summary>
internal sealed class StreamClient : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly DuplexContent _content;
    private readonly HttpResponseMessage _response;
    private readonly Stream _requests;
    private readonly Stream _replies;
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    private StreamClient(HttpClient http, bool ownsHttp, DuplexContent content, HttpResponseMessage response, Stream requests, Stream replies)
    {
        _http = http;
        _ownsHttp = ownsHttp;
        _content = content;
        _response = response;
        _requests = requests;
        _replies = replies;
    }

    public HttpResponseMessage Response => _response;

    /// <summary>Deadline for any one wait in a test: long enough for a loaded 2-core machine, short enough to fail.</summary>
    public static TimeSpan Deadline { get; } = TimeSpan.FromSeconds(60);

    public static async Task<StreamClient> OpenAsync(RunningServer server, HttpClient? http = null, string? timeoutMs = null)
    {
        bool owns = http is null;
        http ??= NewHttp2Client(server);
        var content = new DuplexContent();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/stream")
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (timeoutMs is not null) request.Headers.Add(ParamDbHeaders.TimeoutMs, timeoutMs);
        using var deadline = new CancellationTokenSource(Deadline);
        var sending = http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        var requests = await content.RequestStream.WaitAsync(deadline.Token);
        // Sends the HEADERS frame now: without it the server never starts the response (docs/design.md#facts-measured-on-the-development-machine).
        await requests.FlushAsync(deadline.Token);
        var response = await sending;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(MediaTypes.Stream, response.Content.Headers.ContentType?.MediaType);
        var replies = await response.Content.ReadAsStreamAsync(deadline.Token);
        return new StreamClient(http, owns, content, response, requests, replies);
    }

    /// <summary>A client on its own connection, with a 1 MiB receive window so large pulls are not throttled.</summary>
    public static HttpClient NewHttp2Client(RunningServer server) =>
        new(new SocketsHttpHandler { InitialHttp2StreamWindowSize = 1 << 20 })
        {
            BaseAddress = server.Http2Uri,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

    /// <summary>Writes frames and flushes once.</summary>
    public async Task SendAsync(params byte[][] frames)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        await _sendLock.WaitAsync(deadline.Token);
        try
        {
            foreach (var frame in frames) await _requests.WriteAsync(frame, deadline.Token);
            await _requests.FlushAsync(deadline.Token);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Writes raw bytes (for frames split at odd places) without waiting on a deadline.</summary>
    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        await _requests.WriteAsync(bytes, cancellationToken);
        await _requests.FlushAsync(cancellationToken);
    }

    /// <summary>Ends the request body: the server answers what it has, then ends the response.</summary>
    public void CompleteRequests() => _content.Complete();

    /// <summary>Whether an id-0 reply ends the request body, as a client should; off to play a client that does not.</summary>
    public bool EndRequestsOnId0 { get; set; } = true;

    /// <summary>The next reply, or null when the server ended the response.</summary>
    public async Task<Reply?> ReadAsync()
    {
        using var deadline = new CancellationTokenSource(Deadline);
        var prefix = new byte[StreamRequestHeader.LengthPrefix];
        int got = await _replies.ReadAtLeastAsync(prefix, prefix.Length, throwOnEndOfStream: false, deadline.Token);
        if (got == 0)
        {
            // The server is done with this stream: end the request side too, or the HTTP/2 stream stays half
            // open and a stopping server waits its whole shutdown timeout for the connection to go.
            _content.Complete();
            return null;
        }
        Assert.Equal(prefix.Length, got);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        var frame = new byte[StreamRequestHeader.LengthPrefix + length];
        prefix.CopyTo(frame, 0);
        await _replies.ReadExactlyAsync(frame.AsMemory(prefix.Length), deadline.Token);
        Assert.True(StreamReplyHeader.TryParse(frame, out var header, out var error), error);
        // An id-0 reply is the server's last word (§5.1): end the request side as a client should, so the
        // server can end the response cleanly.
        if (header.RequestId == 0 && EndRequestsOnId0) _content.Complete();
        byte[] payload = frame[StreamReplyHeader.Size..];
        if ((header.Flags & StreamFrameFlags.Lz4) != 0) payload = Wire.Unlz4(payload);
        return new Reply(header, payload);
    }

    /// <summary>The next reply; fails when the stream ended instead.</summary>
    public async Task<Reply> ReadOneAsync() => await ReadAsync() ?? throw new Xunit.Sdk.XunitException("The server ended the stream; a reply was expected.");

    /// <summary>Reads replies until the server ends the response.</summary>
    public async Task<List<Reply>> ReadToEndAsync()
    {
        var replies = new List<Reply>();
        while (await ReadAsync() is { } reply) replies.Add(reply);
        return replies;
    }

    public async ValueTask DisposeAsync()
    {
        _content.Complete();
        _response.Dispose();
        if (_ownsHttp) _http.Dispose();
        _sendLock.Dispose();
        await Task.CompletedTask;
    }
}

/// <summary>A reply frame: its header and its payload (inflated when it was LZ4).</summary>
internal sealed record Reply(StreamReplyHeader Header, byte[] Payload)
{
    public ulong Id => Header.RequestId;
    public int Status => Header.Status;

    public (long Rows, long Applied) Ack()
    {
        Assert.True(Status == 200, $"reply {Id}: expected 200, got {Status}: {Encoding.UTF8.GetString(Payload)}");
        Assert.Equal(StreamReplyHeader.PushPayloadSize, Payload.Length);
        return StreamReplyHeader.ReadPushPayload(Payload);
    }

    public float[] Values(ulong[]? keys = null)
    {
        Assert.True(Status == 200, $"reply {Id}: expected 200, got {Status}: {Encoding.UTF8.GetString(Payload)}");
        return Wire.ValuesOf(Payload, keys);
    }

    /// <summary>Asserts an error reply with <paramref name="status"/> and <paramref name="code"/>; returns the detail.</summary>
    public string AssertProblem(int status, string code)
    {
        var text = Encoding.UTF8.GetString(Payload);
        Assert.True(Status == status, $"reply {Id}: expected {status} {code}, got {Status}: {text}");
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(code, doc.RootElement.GetProperty("code").GetString());
        Assert.Equal(status, doc.RootElement.GetProperty("status").GetInt32());
        return doc.RootElement.GetProperty("detail").GetString() ?? "";
    }
}
