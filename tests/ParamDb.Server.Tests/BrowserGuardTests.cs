using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Server.Http;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>A node on loopback that also answers the names <c>paramdb.example</c> and <c>10.0.0.7</c>.</summary>
public sealed class AllowedHostsServer() : ServerFixture("--allowed-hosts", "paramdb.example, 10.0.0.7");

/// <summary>Foreign <c>Host</c> names and state changes from other sites' pages are refused, and change nothing.</summary>
public sealed class BrowserGuardTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    /// <summary>The node's own origin, as Swagger UI served from it sends.</summary>
    private string OwnOrigin => fixture.Server.Http1Uri.GetLeftPart(UriPartial.Authority);

    private async Task<string> TableWithOneRowAsync()
    {
        var name = ServerFixture.NewTable("guard");
        await Wire.CreateTableAsync(Http, name, """{"dim":2}""");
        await Wire.PushAsync(Http, name, [1], [1f, 1f], 2);
        return name;
    }

    private async Task AssertUnchangedAsync(string name)
    {
        Assert.Equal((float[])[1f, 1f, 0f, 0f], await Wire.PullAsync(Http, name, [1, 2]));
        var info = await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo);
        Assert.Equal(1, info!.Rows);
    }

    public static TheoryData<string, int> Hosts => new()
    {
        { "localhost", 200 },
        { "LOCALHOST:1234", 200 },
        { "127.0.0.1", 200 },
        { "127.9.8.7:80", 200 },
        { "[::1]:7420", 200 },
        { "evil.example", 400 },
        { "evil.example:7420", 400 },
        { "127.0.0.1.nip.io", 400 },
        { "localhost.evil.example", 400 },
        { "10.0.0.7", 400 },
        { "[::2]", 400 },
    };

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task ANodeOnLoopbackAnswersOnlyLoopbackHostNames(string host, int status)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/tables");
        request.Headers.Host = host;
        using var reply = await Http.SendAsync(request);
        if (status == 200) Assert.Equal(200, (int)reply.StatusCode);
        else Assert.Contains(host, await Wire.AssertProblemAsync(reply, 400, ProblemCodes.HostNotAllowed));
    }

    [Fact]
    public async Task AForeignHostIsRefusedOnTheHttp2PortTooAndItsPushChangesNothing()
    {
        var name = await TableWithOneRowAsync();
        // HTTP/2 names the host in :authority, which HttpClient takes from the URL: connect to the node under a
        // foreign name, as a browser after DNS rebinding would.
        var node = fixture.Server.Http2Uri;
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                await socket.ConnectAsync(node.Host, node.Port, ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        };
        using var h2 = new HttpClient(handler)
        {
            BaseAddress = new Uri($"http://evil.example:{node.Port}"),
            DefaultRequestVersion = System.Net.HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var reply = await h2.PostAsync($"/v1/tables/{name}/push", Wire.Kv(Wire.PushBlock([1, 2], [5, 5, 5, 5], 2)));
        Assert.Equal(System.Net.HttpVersion.Version20, reply.Version);
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.HostNotAllowed);
        await AssertUnchangedAsync(name);
    }

    public static TheoryData<string, string, string?, int> Requests => new()
    {
        // kind, header, value ("OWN" = the node's own origin), expected status of a push
        { "no browser headers", "", null, 200 },
        { "same origin (Swagger UI)", "Origin", "OWN", 200 },
        { "another loopback page", "Origin", "http://localhost:3000", 200 },
        { "same-origin fetch", "Sec-Fetch-Site", "same-origin", 200 },
        { "typed into the address bar", "Sec-Fetch-Site", "none", 200 },
        { "another site's page", "Origin", "https://evil.example", 403 },
        { "another site's page on the node's port", "Origin", "http://evil.example:7420", 403 },
        { "a sandboxed frame or a file", "Origin", "null", 403 },
        { "a cross-site fetch", "Sec-Fetch-Site", "cross-site", 403 },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task APushFromAnotherSitesPageIsRefusedAndChangesNothing(string kind, string header, string? value, int status)
    {
        var name = await TableWithOneRowAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{name}/push") { Content = Wire.Kv(Wire.PushBlock([1, 2], [5, 5, 5, 5], 2)) };
        if (value is not null) request.Headers.Add(header, value == "OWN" ? OwnOrigin : value);
        using var reply = await Http.SendAsync(request);
        if (status == 200)
        {
            Assert.True(reply.IsSuccessStatusCode, $"{kind}: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
            Assert.Equal((float[])[6f, 6f, 5f, 5f], await Wire.PullAsync(Http, name, [1, 2]));
            return;
        }
        string detail = await Wire.AssertProblemAsync(reply, 403, ProblemCodes.CrossSiteRequest);
        Assert.Contains(value!, detail);
        await AssertUnchangedAsync(name);
    }

    [Theory]
    [InlineData("DELETE")]
    [InlineData("PUT")]
    public async Task DeletingOrRecreatingATableFromAnotherSiteIsRefused(string method)
    {
        var name = await TableWithOneRowAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), $"/v1/tables/{name}");
        if (method == "PUT") request.Content = Wire.Json("""{"dim":3}""");
        request.Headers.Add("Origin", "https://evil.example");
        using var reply = await Http.SendAsync(request);
        await Wire.AssertProblemAsync(reply, 403, ProblemCodes.CrossSiteRequest);
        await AssertUnchangedAsync(name);
    }

    [Fact]
    public async Task ReadsFromAnotherSitesPageAreAnswered()
    {
        // A read changes nothing; the browser's same-origin policy keeps the reply from the page.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/health");
        request.Headers.Add("Origin", "https://evil.example");
        request.Headers.Add("Sec-Fetch-Site", "cross-site");
        using var reply = await Http.SendAsync(request);
        Assert.Equal(200, (int)reply.StatusCode);
    }

    [Theory]
    [InlineData(null, new[] { "http://127.0.0.1:7420", "http://[::1]:7421", "http://localhost:7500" }, false)]
    [InlineData(null, new[] { "http://127.0.0.1:7420", "http://0.0.0.0:7421" }, true)]
    [InlineData(null, new[] { "http://[::]:7420" }, true)]
    [InlineData(null, new[] { "http://*:7420" }, true)]
    [InlineData("paramdb.example", new[] { "http://0.0.0.0:7420" }, false)]
    [InlineData("paramdb.example,*", new[] { "http://127.0.0.1:7420" }, true)]
    public void AnyHostIsAnsweredWhenAListenAddressIsNotLoopbackUnlessHostsAreGiven(string? allowed, string[] bound, bool any) =>
        Assert.Equal(any, BrowserGuard.AnswersAnyHost(allowed?.Split(','), bound));
}

/// <summary><c>--allowed-hosts</c>: the names it lists are answered besides loopback ones, and <c>*</c> answers any.</summary>
public sealed class AllowedHostsTests(AllowedHostsServer fixture) : IClassFixture<AllowedHostsServer>
{
    [Theory]
    [InlineData("paramdb.example", 200)]
    [InlineData("PARAMDB.example:7420", 200)]
    [InlineData("10.0.0.7:80", 200)]
    [InlineData("localhost", 200)]
    [InlineData("other.example", 400)]
    [InlineData("sub.paramdb.example", 400)]
    public async Task TheListedNamesAndLoopbackOnesAreAnswered(string host, int status)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/tables");
        request.Headers.Host = host;
        using var reply = await fixture.Http.SendAsync(request);
        if (status == 200) Assert.Equal(200, (int)reply.StatusCode);
        else Assert.Contains("paramdb.example", await Wire.AssertProblemAsync(reply, 400, ProblemCodes.HostNotAllowed));
    }

    [Fact]
    public async Task APageServedUnderAnAllowedNameMayChangeTheNode()
    {
        var name = ServerFixture.NewTable("allowed");
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/tables/{name}") { Content = Wire.Json("""{"dim":2}""") };
        request.Headers.Host = "paramdb.example:7420";
        request.Headers.Add("Origin", "http://paramdb.example:7420");
        using var reply = await fixture.Http.SendAsync(request);
        Assert.True(reply.IsSuccessStatusCode, $"{(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
        using var check = await fixture.Http.GetAsync($"/v1/tables/{name}");
        Assert.Equal(200, (int)check.StatusCode);
    }

    [Fact]
    public async Task AStarAnswersAnyName()
    {
        await using var server = await RunningServer.StartAsync(null, "--allowed-hosts", "*");
        using var http = server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/tables");
        request.Headers.Host = "anything.example";
        using var reply = await http.SendAsync(request);
        Assert.Equal(200, (int)reply.StatusCode);
    }

    [Theory]
    [InlineData("a.example:80")]
    [InlineData("http://a.example")]
    [InlineData("a b")]
    public async Task AnAllowedHostThatIsNotAHostNameStopsTheStart(string value)
    {
        var e = await Assert.ThrowsAsync<ParamDb.Server.Options.OptionsException>(() => RunningServer.StartAsync(null, "--allowed-hosts", value));
        Assert.StartsWith($"--allowed-hosts: '{value}'", e.Message);
    }
}
