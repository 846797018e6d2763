using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ParamDb.Protocol;

namespace ParamDb.Server.Tests;

/// <summary>
/// Requests Kestrel itself refuses, sent byte for byte over TCP. Those refused while the request head is parsed never
/// reach the application, so their reply is Kestrel's, with an empty body (docs/wire-format.md lists them); a
/// malformed body is found where the node reads it, and answered as a problem.
/// </summary>
public sealed class KestrelRejectionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private sealed record RawReply(int Status, string Head, string Body);

    /// <summary>Sends <paramref name="request"/> (with <c>Connection: close</c>) and reads the reply until the node closes.</summary>
    private async Task<RawReply> SendAsync(byte[] request)
    {
        string text = Encoding.Latin1.GetString(await ExchangeAsync(request, halfClose: false));
        int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, $"no reply head in: {text}");
        string head = text[..end];
        string body = text[(end + 4)..];
        if (head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)) body = Unchunk(body);
        return new RawReply(int.Parse(head.Split(' ')[1]), head, body);
    }

    /// <summary>The bytes the node sends back until it closes the connection (or resets it: then those before).</summary>
    private async Task<byte[]> ExchangeAsync(byte[] request, bool halfClose)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(fixture.Server.Http1Uri.Host, fixture.Server.Http1Uri.Port);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync(request);
        if (halfClose) client.Client.Shutdown(SocketShutdown.Send);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0) received.Write(buffer, 0, read);
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
        }
        return received.ToArray();
    }

    private static string Unchunk(string chunked)
    {
        var body = new StringBuilder();
        int at = 0;
        while (true)
        {
            int line = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            int size = Convert.ToInt32(chunked[at..line], 16);
            if (size == 0) return body.ToString();
            body.Append(chunked, line + 2, size);
            at = line + 2 + size + 2;
        }
    }

    private static byte[] Request(string head, string body = "") =>
        [.. Encoding.Latin1.GetBytes(head + "Connection: close\r\n\r\n"), .. Encoding.Latin1.GetBytes(body)];

    public static TheoryData<string, int> RefusedBeforeTheApplication => new()
    {
        { "nul-in-path", 400 },
        { "encoded-nul-in-path", 400 },
        { "non-ascii-header-bytes", 400 },
        { "malformed-content-length", 400 },
        { "two-content-lengths", 400 },
        { "no-host", 400 },
        { "oversize-header", 431 },
        { "oversize-request-line", 414 },
    };

    private static byte[] Refused(string kind) => kind switch
    {
        "nul-in-path" => Request("GET /v1/ta\0bles HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        "encoded-nul-in-path" => Request("GET /v1/tables/a%00b HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        "non-ascii-header-bytes" => Request("GET /v1/tables HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Name: caf\u00e9 \u00ff\u00fe\r\n"),
        "malformed-content-length" => Request("POST /v1/checkpoint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12abc\r\n"),
        "two-content-lengths" => Request("POST /v1/checkpoint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n", "xx"),
        "no-host" => Request("GET /v1/tables HTTP/1.1\r\n"),
        "oversize-header" => Request($"GET /v1/tables HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {new string('a', 40_000)}\r\n"),
        "oversize-request-line" => Request($"GET /v1/tables?{new string('a', 10_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [MemberData(nameof(RefusedBeforeTheApplication))]
    public async Task KestrelRefusesAMalformedHeadBeforeTheApplicationWithAnEmptyBody(string kind, int status)
    {
        var reply = await SendAsync(Refused(kind));
        Assert.True(reply.Status == status, $"{kind}: {reply.Head}");
        // The body ASP.NET does not let the application write: if this starts failing, Kestrel lets it now, and the
        // node should answer these with problems too.
        Assert.Equal("", reply.Body);
        Assert.Contains("Content-Length: 0", reply.Head);
    }

    private static void AssertProblem(RawReply reply, int status, string code)
    {
        Assert.True(reply.Status == status, reply.Head + "\n" + reply.Body);
        Assert.Contains("Content-Type: " + MediaTypes.Problem, reply.Head);
        using var doc = JsonDocument.Parse(reply.Body);
        Assert.Equal(code, doc.RootElement.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(doc.RootElement.GetProperty("detail").GetString()));
    }

    [Fact]
    public async Task AMalformedChunkedPushBodyIsAProblemAndChangesNothing()
    {
        var name = ServerFixture.NewTable("raw");
        await Wire.CreateTableAsync(fixture.Http, name, """{"dim":2}""");
        var reply = await SendAsync(Request(
            $"POST /v1/tables/{name}/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MediaTypes.KvBlock}\r\nTransfer-Encoding: chunked\r\n",
            "zz\r\nPDB1\r\n0\r\n\r\n"));
        AssertProblem(reply, 400, ProblemCodes.BadRequest);
        Assert.Equal((float[])[0f, 0f], await Wire.PullAsync(fixture.Http, name, [1]));
    }

    [Fact]
    public async Task AMalformedChunkedJsonBodyIsAProblem()
    {
        var reply = await SendAsync(Request(
            $"PUT /v1/tables/{ServerFixture.NewTable("raw")} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
            "2\r\n{}\r\nq\r\n"));
        AssertProblem(reply, 400, ProblemCodes.BadRequest);
    }

    [Fact]
    public async Task ABodyThatEndsBeforeItsContentLengthGetsNoReplyAndChangesNothing()
    {
        var name = ServerFixture.NewTable("raw");
        await Wire.CreateTableAsync(fixture.Http, name, """{"dim":2}""");
        // The client stops sending (half-close) 10 bytes into a 100-byte body. Kestrel takes the end of input as the
        // end of the connection and closes or resets it: no reply can be written, by the node or by Kestrel.
        byte[] reply = await ExchangeAsync(Request(
            $"POST /v1/tables/{name}/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MediaTypes.KvBlock}\r\nContent-Length: 100\r\n",
            "PDB1\0\0\0\0\0\0"), halfClose: true);
        Assert.Empty(reply);
        Assert.Equal((float[])[0f, 0f], await Wire.PullAsync(fixture.Http, name, [1]));
    }
}
