using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Server.Streaming;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>
/// Pulls that wait for vector clocks on the stream (docs/consistency.md): parked without a thread, answered out of order
/// when a later tick reaches their clock, bounded per stream, cancelled on shutdown.
/// </summary>
public sealed class StreamClockTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const int Sequential = 0;

    private static async Task<uint> RegisterAsync(HttpClient http, string table)
    {
        using var reply = await http.PostAsJsonAsync("/v1/workers", new WorkerRegistration { Name = "stream-test", Tables = [table] }, ProtocolJson.Default.WorkerRegistration);
        Assert.True(reply.IsSuccessStatusCode, $"register: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
        return (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.WorkerInfo))!.Worker;
    }

    [Fact]
    public async Task SequentialPullWaitsForTheTickThatReachesItsClockAndOthersOvertakeIt()
    {
        var table = ServerFixture.NewTable("clk");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":1}""");
        uint worker = await RegisterAsync(fixture.Http, table);
        using var counters = new StreamCounters(fixture.Server);
        await using var stream = await StreamClient.OpenAsync(fixture.Server);

        // Clock 1 pushed; a sequential pull at clock 3 needs every worker at clock 2, so it waits.
        await stream.SendAsync(
            StreamFrames.Push(1, table, [7], [1], 1, worker, clock: 1),
            StreamFrames.Pull(2, table, [7], Sequential, clock: 3, worker),
            StreamFrames.Pull(3, table, [7]));

        Assert.Equal(1UL, (await stream.ReadOneAsync()).Id);
        var eventual = await stream.ReadOneAsync();
        Assert.Equal(3UL, eventual.Id); // overtook the waiting pull 2
        Assert.Equal((float[])[1], eventual.Values());
        Assert.Equal(1, counters[StreamMetrics.Names.WaitingPulls]);

        await stream.SendAsync(StreamFrames.Push(4, table, [7], [10], 1, worker, clock: 2));
        var replies = new[] { await stream.ReadOneAsync(), await stream.ReadOneAsync() }.ToDictionary(r => r.Id);
        Assert.Equal((1L, 1L), replies[4].Ack());
        Assert.Equal((float[])[11], replies[2].Values());
        Assert.True(replies[2].Header.Clock >= 2, $"clock min {replies[2].Header.Clock}");
        Assert.Equal(0, counters[StreamMetrics.Names.WaitingPulls]);
    }

    [Fact]
    public async Task FiveThousandWaitingPullsAreAllReleasedByOneTick()
    {
        const int pulls = 5000;
        var table = ServerFixture.NewTable("clk");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":1}""");
        uint worker = await RegisterAsync(fixture.Http, table);
        using var counters = new StreamCounters(fixture.Server);
        await using var stream = await StreamClient.OpenAsync(fixture.Server);

        await stream.SendAsync(Enumerable.Range(1, pulls).Select(id => StreamFrames.Pull((ulong)id, table, [1], Sequential, clock: 2, worker)).ToArray());
        await counters.WaitUntilAsync(c => c[StreamMetrics.Names.WaitingPulls] == pulls, $"{pulls} pulls are parked");
        await stream.SendAsync(StreamFrames.Tick(pulls + 1, table, worker, 1));

        var seen = new HashSet<ulong>();
        while (seen.Count < pulls + 1)
        {
            var reply = await stream.ReadOneAsync();
            Assert.True(seen.Add(reply.Id), $"request {reply.Id} answered twice");
            Assert.Equal(200, reply.Status);
        }
        Assert.Equal(0, counters[StreamMetrics.Names.WaitingPulls]);
    }

    [Fact]
    public async Task WaitPastTheStreamTimeoutIsAnswered408NamingTheWorkerBehind()
    {
        var table = ServerFixture.NewTable("clk");
        await Wire.CreateTableAsync(fixture.Http, table, """{"dim":1}""");
        uint worker = await RegisterAsync(fixture.Http, table);
        await using var stream = await StreamClient.OpenAsync(fixture.Server, timeoutMs: "200");

        await stream.SendAsync(StreamFrames.Pull(1, table, [1], Sequential, clock: 5, worker));

        var reply = await stream.ReadOneAsync();
        Assert.Equal(1UL, reply.Id);
        Assert.Contains($"worker {worker}", reply.AssertProblem(408, ProblemCodes.ClockWaitTimeout));
    }

    [Fact]
    public async Task PullsBeyondTheWaitingLimitAreRefused429AndTheOthersStillServed()
    {
        await using var server = await RunningServer.StartAsync(null, "--stream-max-waiting", "2");
        using var http = server.CreateClient();
        var table = ServerFixture.NewTable("clk");
        await Wire.CreateTableAsync(http, table, """{"dim":1}""");
        uint worker = await RegisterAsync(http, table);
        await using var stream = await StreamClient.OpenAsync(server);

        await stream.SendAsync(
            StreamFrames.Pull(1, table, [1], Sequential, clock: 2, worker),
            StreamFrames.Pull(2, table, [1], Sequential, clock: 2, worker),
            StreamFrames.Pull(3, table, [1], Sequential, clock: 2, worker));
        var refused = await stream.ReadOneAsync();
        Assert.Equal(3UL, refused.Id);
        refused.AssertProblem(429, ProblemCodes.TooManyWaitingPulls);

        await stream.SendAsync(StreamFrames.Tick(4, table, worker, 1));
        var ids = new[] { await stream.ReadOneAsync(), await stream.ReadOneAsync(), await stream.ReadOneAsync() }.Select(r => r.Id).Order();
        Assert.Equal([1UL, 2UL, 4UL], ids);
    }

    [Fact]
    public async Task ShutdownAnswersWaitingPullsWith503BeforeTheLastId0Reply()
    {
        var server = await RunningServer.StartAsync();
        try
        {
            using var http = server.CreateClient();
            var table = ServerFixture.NewTable("clk");
            await Wire.CreateTableAsync(http, table, """{"dim":1}""");
            uint worker = await RegisterAsync(http, table);
            using var counters = new StreamCounters(server);
            await using var stream = await StreamClient.OpenAsync(server);
            await stream.SendAsync(StreamFrames.Pull(1, table, [1], Sequential, clock: 9, worker));
            await counters.WaitUntilAsync(c => c[StreamMetrics.Names.WaitingPulls] == 1, "the pull is parked");

            var stopping = server.DisposeAsync().AsTask();
            var parked = await stream.ReadOneAsync();
            Assert.Equal(1UL, parked.Id);
            parked.AssertProblem(503, ProblemCodes.Unavailable);
            var last = await stream.ReadOneAsync();
            Assert.Equal(0UL, last.Id);
            last.AssertProblem(503, ProblemCodes.Unavailable);
            Assert.Null(await stream.ReadAsync());
            await stopping;
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
