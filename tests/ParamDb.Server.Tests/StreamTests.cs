using System.Net;
using ParamDb.Protocol;
using ParamDb.Server.Streaming;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary><c>POST /v1/stream</c> against a real node: round trips, pipelining, LZ4, HTTP/1.1, ending and aborting.</summary>
public sealed class StreamTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private RunningServer Server => fixture.Server;

    [Fact]
    public async Task PushThenPullOnOneStreamReadsThePushedValues()
    {
        var table = ServerFixture.NewTable("s");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":3}""");
        await using var stream = await StreamClient.OpenAsync(Server);

        // Sent together: the pull is served after the push because a stream reads its own writes.
        await stream.SendAsync(
            StreamFrames.Push(1, table, [5, 9], [1, 2, 3, 4, 5, 6], dim: 3),
            StreamFrames.Pull(2, table, [5, 7, 9]));

        var push = await stream.ReadOneAsync();
        Assert.Equal(1UL, push.Id);
        Assert.Equal((2L, 2L), push.Ack());
        var pull = await stream.ReadOneAsync();
        Assert.Equal(2UL, pull.Id);
        Assert.Equal((float[])[1, 2, 3, 0, 0, 0, 4, 5, 6], pull.Values([5, 7, 9]));
        Assert.Equal(0UL, pull.Header.Clock);
        Assert.Equal((float[])[1, 2, 3, 0, 0, 0, 4, 5, 6], await Wire.PullAsync(fixture.Http, table, [5, 7, 9]));
    }

    [Fact]
    public async Task TenThousandPipelinedRequestsAreEachAnsweredOnceUnderTheirId()
    {
        const int requests = 10_000;
        var table = ServerFixture.NewTable("s");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":2}""");
        await using var stream = await StreamClient.OpenAsync(Server);

        // Even ids push row k = id/2 with (k, -k); odd ids pull rows k-1 and k, whose pushes came before them.
        var sending = Task.Run(async () =>
        {
            var batch = new List<byte[]>();
            for (ulong id = 2; id < requests + 2; id++)
            {
                ulong k = id / 2;
                batch.Add(id % 2 == 0
                    ? StreamFrames.Push(id, table, [k], [k, -(float)k], dim: 2)
                    : StreamFrames.Pull(id, table, [k - 1, k]));
                if (batch.Count == 500)
                {
                    await stream.SendAsync([.. batch]);
                    batch.Clear();
                }
            }
            await stream.SendAsync([.. batch]);
            stream.CompleteRequests();
        });

        var seen = new HashSet<ulong>();
        while (await stream.ReadAsync() is { } reply)
        {
            Assert.True(seen.Add(reply.Id), $"request {reply.Id} answered twice");
            ulong k = reply.Id / 2;
            if (reply.Id % 2 == 0) Assert.Equal((1L, 1L), reply.Ack());
            else Assert.Equal(k == 1 ? (float[])[0, 0, 1, -1] : [k - 1, -(float)(k - 1), k, -(float)k], reply.Values([k - 1, k]));
        }
        await sending;
        Assert.Equal(requests, seen.Count);
    }

    [Fact]
    public async Task Lz4PushAndPullRoundTripAndTheReplyIsFlaggedLz4()
    {
        var table = ServerFixture.NewTable("s");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":16}""");
        var keys = Enumerable.Range(0, 400).Select(i => (ulong)(i * 3)).ToArray();
        var values = new float[keys.Length * 16];
        for (int i = 0; i < values.Length; i += 10) values[i] = i * 0.5f; // 90 % zeros, what LZ4 is for
        await using var stream = await StreamClient.OpenAsync(Server);

        await stream.SendAsync(StreamFrames.Push(1, table, keys, values, 16, lz4: true), StreamFrames.Pull(2, table, keys, lz4: true));

        Assert.Equal((400L, 400L), (await stream.ReadOneAsync()).Ack());
        var pull = await stream.ReadOneAsync();
        Assert.Equal(ParamDb.Protocol.Stream.StreamFrameFlags.Lz4, pull.Header.Flags);
        Assert.True(pull.Header.PayloadLength < pull.Payload.Length / 2, $"{pull.Header.PayloadLength} bytes on the wire for a {pull.Payload.Length}-byte block");
        Assert.Equal(values, pull.Values(keys));
    }

    [Fact]
    public async Task RangePullAndTickAreAnswered()
    {
        var table = ServerFixture.NewTable("s");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":1,"init":{"kind":"constant","value":0.5}}""");
        await using var stream = await StreamClient.OpenAsync(Server);

        await stream.SendAsync(StreamFrames.Push(1, table, [101], [2], 1), StreamFrames.PullRange(2, table, 100, 3), StreamFrames.Tick(3, table, 0, 0));

        Assert.Equal((1L, 1L), (await stream.ReadOneAsync()).Ack());
        Assert.Equal((float[])[0.5f, 2.5f, 0.5f], (await stream.ReadOneAsync()).Values());
        var tick = await stream.ReadOneAsync();
        Assert.Equal(3UL, tick.Id);
        Assert.Equal((0L, 0L), tick.Ack());
    }

    [Fact]
    public async Task EndingTheRequestBodyEndsTheResponseAfterTheLastReply()
    {
        var table = ServerFixture.NewTable("s");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":1}""");
        await using var stream = await StreamClient.OpenAsync(Server);

        await stream.SendAsync(StreamFrames.Pull(1, table, [1]), StreamFrames.Pull(2, table, [2]));
        stream.CompleteRequests();

        var replies = await stream.ReadToEndAsync();
        Assert.Equal([1UL, 2UL], replies.Select(r => r.Id));
    }

    [Fact]
    public async Task Http11RequestGets505WithTheH2cAddress()
    {
        using var content = new ByteArrayContent(StreamFrames.Pull(1, "t", [1]));
        using var reply = await fixture.Http.PostAsync("/v1/stream", content);

        var detail = await Wire.AssertProblemAsync(reply, 505, ProblemCodes.Http2Required);
        Assert.Contains(Server.Http2Uri.ToString().TrimEnd('/'), detail);
    }

    [Fact]
    public async Task BadTimeoutHeaderIsRefusedBeforeTheStreamStarts()
    {
        using var http = StreamClient.NewHttp2Client(Server);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/stream")
        {
            Content = new ByteArrayContent([]),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Add(ParamDbHeaders.TimeoutMs, "soon");
        using var reply = await http.SendAsync(request);
        Assert.Equal(HttpVersion.Version20, reply.Version);
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.BadHeader);
    }

    [Fact]
    public async Task TwoStreamsOnOneConnectionAreIndependentWhenOneSendsGarbage()
    {
        var table = ServerFixture.NewTable("s");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":1}""");
        using var http = StreamClient.NewHttp2Client(Server);
        await using var good = await StreamClient.OpenAsync(Server, http);
        await using var bad = await StreamClient.OpenAsync(Server, http);

        await good.SendAsync(StreamFrames.Push(1, table, [1], [1], 1));
        await bad.SendAsync(new byte[] { 3, 0, 0, 0, 9, 9, 9 }); // length 3: no id can be read
        var fatal = await bad.ReadOneAsync();
        Assert.Equal(0UL, fatal.Id);
        fatal.AssertProblem(400, ProblemCodes.BadFrame);
        Assert.Null(await bad.ReadAsync());

        await good.SendAsync(StreamFrames.Push(2, table, [1], [1], 1), StreamFrames.Pull(3, table, [1]));
        Assert.Equal((1L, 1L), (await good.ReadOneAsync()).Ack());
        Assert.Equal((1L, 1L), (await good.ReadOneAsync()).Ack());
        Assert.Equal((float[])[2], (await good.ReadOneAsync()).Values());
    }

    [Fact]
    public async Task ClientAbortEndsTheSessionAndReturnsItsBuffers()
    {
        await using var server = await RunningServer.StartAsync();
        using var http = server.CreateClient();
        var table = ServerFixture.NewTable("s");
        await Wire.CreateTableAsync(http, table, """{"dim":1}""");
        using var counters = new StreamCounters(server);

        var stream = await StreamClient.OpenAsync(server);
        await stream.SendAsync(StreamFrames.Pull(1, table, [1]));
        Assert.Equal((float[])[0], (await stream.ReadOneAsync()).Values());
        Assert.Equal(1, counters[StreamMetrics.Names.Active]);

        await stream.DisposeAsync(); // resets the HTTP/2 stream with the request body still open

        await counters.WaitUntilAsync(c => c[StreamMetrics.Names.Active] == 0, "the aborted stream's session ended");
        Assert.Equal(0, counters[StreamMetrics.Names.QueuedBytes]);
        Assert.Equal(0, counters[StreamMetrics.Names.WaitingPulls]);
    }

    [Fact]
    public async Task ServerShutdownEndsTheStreamWithAnId0Unavailable()
    {
        var server = await RunningServer.StartAsync();
        try
        {
            using var http = server.CreateClient();
            var table = ServerFixture.NewTable("s");
            await Wire.CreateTableAsync(http, table, """{"dim":1}""");
            await using var stream = await StreamClient.OpenAsync(server);
            await stream.SendAsync(StreamFrames.Pull(1, table, [1]));
            Assert.Equal(1UL, (await stream.ReadOneAsync()).Id);

            var stopping = server.DisposeAsync().AsTask();
            var last = await stream.ReadOneAsync();
            Assert.Equal(0UL, last.Id);
            last.AssertProblem(503, ProblemCodes.Unavailable);
            Assert.Null(await stream.ReadAsync()); // the client ended its body on id 0, so the response ends cleanly
            await stopping;
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
