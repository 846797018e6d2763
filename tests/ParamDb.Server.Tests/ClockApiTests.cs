using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ParamDb.Protocol;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>Workers, clocked pushes and consistent pulls over REST (docs/consistency.md).</summary>
public sealed class ClockApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Http;

    internal static async Task<uint> RegisterAsync(HttpClient http, string name, string[]? tables = null, int? leaseMs = null)
    {
        using var reply = await http.PostAsJsonAsync("/v1/workers", new WorkerRegistration { Name = name, Tables = tables, LeaseMs = leaseMs }, ProtocolJson.Default.WorkerRegistration);
        Assert.Equal(HttpStatusCode.Created, reply.StatusCode);
        var info = await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.WorkerInfo);
        Assert.Equal(name, info!.Name);
        Assert.True(info.Live);
        return info.Worker;
    }

    internal static async Task<(HttpStatusCode Status, string Body)> PushAsync(HttpClient http, string table, string json, uint worker = 0, ulong clock = 0)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{table}/push") { Content = Wire.Json(json) };
        if (worker != 0) request.Headers.Add(ParamDbHeaders.Worker, worker.ToString());
        if (clock != 0) request.Headers.Add(ParamDbHeaders.Clock, clock.ToString());
        using var reply = await http.SendAsync(request);
        return (reply.StatusCode, await reply.Content.ReadAsStringAsync());
    }

    internal static async Task<(HttpStatusCode Status, string Body, string? ClockMin)> PullAsync(HttpClient http, string table, string json, string? consistency = null, ulong clock = 0, int? timeoutMs = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{table}/pull") { Content = Wire.Json(json) };
        if (consistency is not null) request.Headers.Add(ParamDbHeaders.Consistency, consistency);
        if (clock != 0) request.Headers.Add(ParamDbHeaders.Clock, clock.ToString());
        if (timeoutMs is { } t) request.Headers.Add(ParamDbHeaders.TimeoutMs, t.ToString());
        using var reply = await http.SendAsync(request);
        string? min = reply.Headers.TryGetValues(ParamDbHeaders.ClockMin, out var v) ? v.Single() : null;
        return (reply.StatusCode, await reply.Content.ReadAsStringAsync(), min);
    }

    [Fact]
    public async Task RetriedPushWithTheSameWorkerAndClockIsAppliedOnce()
    {
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":2}""");
        uint w = await RegisterAsync(_http, "retrier", [t]);
        const string body = """{"keys":[1,70000],"values":[[1,2],[3,4]]}""";
        Assert.Equal((HttpStatusCode.OK, """{"rows":2,"applied":2}"""), await PushAsync(_http, t, body, w, 1));
        Assert.Equal((HttpStatusCode.OK, """{"rows":2,"applied":0}"""), await PushAsync(_http, t, body, w, 1));
        Assert.Equal((HttpStatusCode.OK, """{"rows":2,"applied":2}"""), await PushAsync(_http, t, body, w, 2));
        var (status, reply, min) = await PullAsync(_http, t, """{"keys":[1,70000]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"keys":[1,70000],"values":[[2,4],[6,8]]}""", reply);
        Assert.Equal("2", min);
    }

    [Fact]
    public async Task EmptyPushIsATick()
    {
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":2}""");
        uint w = await RegisterAsync(_http, "ticker", [t]);
        Assert.Equal((HttpStatusCode.OK, """{"rows":0,"applied":0}"""), await PushAsync(_http, t, """{"keys":[],"values":[]}""", w, 7));
        Assert.Equal("7", (await PullAsync(_http, t, """{"keys":[1]}""")).ClockMin);
    }

    [Theory]
    [InlineData("ParamDb-Clock", "3", null, 400, "bad_header")]        // a clock without a worker
    [InlineData("ParamDb-Worker", "abc", null, 400, "bad_header")]
    [InlineData("ParamDb-Worker", "99999", "1", 404, "worker_not_found")]
    public async Task BadPushStampsAreRefusedAndChangeNothing(string header, string value, string? clock, int status, string code)
    {
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":1}""");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{t}/push") { Content = Wire.Json("""{"keys":[1],"values":[[5]]}""") };
        request.Headers.Add(header, value);
        if (clock is not null) request.Headers.Add(ParamDbHeaders.Clock, clock);
        using var reply = await _http.SendAsync(request);
        Assert.Equal(status, (int)reply.StatusCode);
        Assert.Equal(code, JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement.GetProperty("code").GetString());
        Assert.Equal("""{"keys":[1],"values":[[0]]}""", (await PullAsync(_http, t, """{"keys":[1]}""")).Body);
    }

    [Theory]
    [InlineData("sometimes")]
    [InlineData("bounded:-1")]
    [InlineData("bounded:")]
    public async Task BadConsistencyIsRefused(string consistency)
    {
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":1}""");
        var (status, body, _) = await PullAsync(_http, t, """{"keys":[1]}""", consistency, 5);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("bad_header", body);
    }

    [Fact]
    public async Task SequentialPullWaitsForEveryLiveWorkersPreviousClock()
    {
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":1}""");
        uint a = await RegisterAsync(_http, "a", [t]), b = await RegisterAsync(_http, "b", [t]);
        await PushAsync(_http, t, """{"keys":[1],"values":[[1]]}""", a, 1);
        var pull = PullAsync(_http, t, """{"keys":[1,2]}""", "sequential", 2);
        Assert.False(pull.IsCompleted);
        await PushAsync(_http, t, """{"keys":[2],"values":[[1]]}""", b, 1);
        var (status, body, min) = await pull.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"keys":[1,2],"values":[[1],[1]]}""", body);
        Assert.Equal("1", min);
    }

    [Fact]
    public async Task ATimedOutWaitIs408NamingTheWorkersBehind()
    {
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":1}""");
        uint a = await RegisterAsync(_http, "ahead", [t]), b = await RegisterAsync(_http, "behind", [t]);
        await PushAsync(_http, t, """{"keys":[],"values":[]}""", a, 6);
        await PushAsync(_http, t, """{"keys":[],"values":[]}""", b, 2);
        var (status, body, _) = await PullAsync(_http, t, """{"keys":[1]}""", "bounded:1", 6, timeoutMs: 100);
        Assert.Equal(HttpStatusCode.RequestTimeout, status);
        var problem = JsonSerializer.Deserialize(body, ProtocolJson.Default.ProblemReply)!;
        Assert.Equal("clock_wait_timeout", problem.Code);
        Assert.Equal(4UL, problem.Target);
        Assert.Equal([new WorkerClock(b, "behind", 2)], problem.Behind);
        Assert.Contains($"worker {b} ('behind') at clock 2", problem.Detail);
    }

    [Fact]
    public async Task WorkersHeartbeatListAndLeave()
    {
        uint w = await RegisterAsync(_http, "hb", leaseMs: 5000);
        using (var beat = await _http.PostAsync($"/v1/workers/{w}/heartbeat", null))
        {
            Assert.Equal(HttpStatusCode.OK, beat.StatusCode);
            Assert.True((await beat.Content.ReadFromJsonAsync(ProtocolJson.Default.WorkerInfo))!.ExpiresInMs > 4000);
        }
        var list = await _http.GetFromJsonAsync("/v1/workers", ProtocolJson.Default.WorkerList);
        Assert.Contains(list!.Workers, x => x.Worker == w && x.Name == "hb" && x.Tables.Count == 0 && x.LeaseMs == 5000);
        using (var gone = await _http.DeleteAsync($"/v1/workers/{w}")) Assert.Equal(HttpStatusCode.NoContent, gone.StatusCode);
        using (var again = await _http.DeleteAsync($"/v1/workers/{w}")) Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        using (var beat = await _http.PostAsync($"/v1/workers/{w}/heartbeat", null))
            Assert.Contains("worker_not_found", await beat.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("""{"name":""}""", "invalid_worker")]
    [InlineData("""{"name":"w","leaseMs":5}""", "invalid_worker")]
    [InlineData("""{"name":"w","tables":["../x"]}""", "invalid_table_name")]
    [InlineData("""{"name":"w","leaseMs":"soon"}""", "invalid_worker")]
    public async Task BadRegistrationsAreRefused(string json, string code)
    {
        int before = (await _http.GetFromJsonAsync("/v1/workers", ProtocolJson.Default.WorkerList))!.Workers.Count;
        using var reply = await _http.PostAsync("/v1/workers", Wire.Json(json));
        Assert.Equal(HttpStatusCode.BadRequest, reply.StatusCode);
        Assert.Contains(code, await reply.Content.ReadAsStringAsync());
        Assert.Equal(before, (await _http.GetFromJsonAsync("/v1/workers", ProtocolJson.Default.WorkerList))!.Workers.Count);
    }

    [Fact]
    public async Task AnExpiredWorkerReleasesWaitingPulls()
    {
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":1}""");
        await RegisterAsync(_http, "will-vanish", [t], leaseMs: WorkerLimits.MinLeaseMs);
        var (status, _, min) = await PullAsync(_http, t, """{"keys":[1]}""", "sequential", 3, timeoutMs: 30_000);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("0", min);
    }

    /// <summary>
    /// The paper's bounded delay, as a property: N workers with random delays each add 1 to their own key per
    /// clock; every pull at clock c under bounded:τ sees every worker's pushes up to c−1−τ.
    /// </summary>
    [Theory]
    [InlineData("sequential", 0)]
    [InlineData("bounded:2", 2)]
    public async Task EveryPullSeesEveryPushItsConsistencyPromises(string consistency, int tau)
    {
        const int workers = 4, clocks = 12;
        string t = ServerFixture.NewTable();
        await Wire.CreateTableAsync(_http, t, """{"dim":1}""");
        var ids = new uint[workers];
        for (int i = 0; i < workers; i++) ids[i] = await RegisterAsync(_http, $"p{i}", [t]);
        string allKeys = $$"""{"keys":[{{string.Join(',', Enumerable.Range(0, workers))}}]}""";
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async i =>
        {
            var random = new Random(i * 7919 + tau);
            for (ulong c = 1; c <= clocks; c++)
            {
                var (status, body, _) = await PullAsync(_http, t, allKeys, consistency, c);
                Assert.Equal(HttpStatusCode.OK, status);
                float[] seen = JsonDocument.Parse(body).RootElement.GetProperty("values").EnumerateArray().Select(r => r[0].GetSingle()).ToArray();
                long promised = (long)c - 1 - tau;
                for (int v = 0; v < workers; v++)
                    Assert.True(seen[v] >= promised, $"worker {i} at clock {c} saw {seen[v]} from worker {v}; {consistency} promises ≥ {promised}");
                await Task.Delay(random.Next(0, 4));   // jitter so workers drift apart, not synchronisation
                await PushAsync(_http, t, $$"""{"keys":[{{i}}],"values":[[1]]}""", ids[i], c);
            }
        }));
    }
}

/// <summary>Workers and clocks across a restart.</summary>
public sealed class ClockPersistenceTests
{
    [Fact]
    public async Task WorkersAndClocksSurviveARestartSoRetriesStayExactlyOnce()
    {
        await using var first = await RunningServer.StartAsync();
        using var http = first.CreateClient();
        await Wire.CreateTableAsync(http, "t", """{"dim":1}""");
        uint w = await ClockApiTests.RegisterAsync(http, "survivor", ["t"], 60_000);
        await ClockApiTests.PushAsync(http, "t", """{"keys":[3],"values":[[1]]}""", w, 1);
        await using var second = await first.RestartAsync();
        using var http2 = second.CreateClient();
        Assert.Equal((HttpStatusCode.OK, """{"rows":1,"applied":0}"""), await ClockApiTests.PushAsync(http2, "t", """{"keys":[3],"values":[[1]]}""", w, 1));
        Assert.Equal((HttpStatusCode.OK, """{"rows":1,"applied":1}"""), await ClockApiTests.PushAsync(http2, "t", """{"keys":[3],"values":[[1]]}""", w, 2));
        var (_, body, min) = await ClockApiTests.PullAsync(http2, "t", """{"keys":[3]}""");
        Assert.Equal("""{"keys":[3],"values":[[2]]}""", body);
        Assert.Equal("2", min);
    }
}
