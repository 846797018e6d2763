using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ParamDb.Protocol;

namespace ParamDb.Server.Tests;

public sealed class DataApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task AfterNPushesOfDeltaTheRowIsInitPlusNTimesDelta()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":3,"init":{"kind":"constant","value":1.5}}""");
        ulong[] keys = [2, 9, 1_000_000_007];
        for (int i = 0; i < 10; i++)
        {
            var result = await Wire.PushAsync(Http, name, keys, [1, 2, 3, 1, 2, 3, 1, 2, 3], 3);
            Assert.Equal(new PushResult(3, 3), result);
        }
        var values = await Wire.PullAsync(Http, name, [2, 3, 1_000_000_007]);
        // Key 3 was never pushed: it reads as its initial value and is not stored.
        Assert.Equal([11.5f, 21.5f, 31.5f, 1.5f, 1.5f, 1.5f, 11.5f, 21.5f, 31.5f], values);
        var info = await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo);
        Assert.Equal(3, info!.Rows);
    }

    [Fact]
    public async Task DenseRangePushAndPullUseTheRangeLayout()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":2}""");
        var push = new byte[KvBlockWriter.SizeOf(true, 4, 2, true)];
        KvBlockWriter.WriteRange(push, 100, 4, [1, 2, 3, 4, 5, 6, 7, 8], 2, withValues: true);
        using (var reply = await Http.PostAsync($"/v1/tables/{name}/push", Wire.Kv(push)))
            Assert.Equal(new PushResult(4, 4), await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.PushResult));

        var pull = new byte[KvBlockWriter.SizeOf(true, 5, 0, false)];
        KvBlockWriter.WriteRange(pull, 99, 5, default, 0, withValues: false);
        using var pulled = await Http.PostAsync($"/v1/tables/{name}/pull", Wire.Kv(pull));
        var block = await pulled.Content.ReadAsByteArrayAsync();
        Assert.True(KvBlock.TryParse(block, KvExpect.Values, 100, out var parsed, out _));
        Assert.True(parsed.IsRange);
        Assert.Equal(99ul, parsed.First);
        Assert.Equal(2, parsed.Dim);
        Assert.Equal([0f, 0, 1, 2, 3, 4, 5, 6, 7, 8], parsed.Values(block).ToArray());
    }

    [Fact]
    public async Task JsonPushAndJsonPullRoundTrip()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":2,"updater":{"kind":"assign"}}""");
        using (var push = await Http.PostAsync($"/v1/tables/{name}/push", Wire.Json("""{"keys":[1,5],"values":[[0.5,-1],[2,3]]}""")))
            Assert.Equal(new PushResult(2, 2), await push.Content.ReadFromJsonAsync(ProtocolJson.Default.PushResult));
        using (var push = await Http.PostAsync($"/v1/tables/{name}/push", Wire.Json("""{"first":6,"values":[[7,8]]}""")))
            Assert.True(push.IsSuccessStatusCode);

        using var pull = await Http.PostAsync($"/v1/tables/{name}/pull", Wire.Json("""{"keys":[1,5,6,7]}"""));
        Assert.Equal(MediaTypes.Json, pull.Content.Headers.ContentType?.MediaType);
        var reply = (await pull.Content.ReadFromJsonAsync(ProtocolJson.Default.KvJson))!;
        Assert.Equal([1ul, 5, 6, 7], reply.Keys);
        Assert.Equal([0.5f, -1f], reply.Values![0]);
        Assert.Equal([2f, 3f], reply.Values[1]);
        Assert.Equal([7f, 8f], reply.Values[2]);
        Assert.Equal([0f, 0f], reply.Values[3]);

        using var range = await Http.PostAsync($"/v1/tables/{name}/pull", Wire.Json("""{"first":5,"count":2}"""));
        var rangeReply = (await range.Content.ReadFromJsonAsync(ProtocolJson.Default.KvJson))!;
        Assert.Equal(5ul, rangeReply.First);
        Assert.Null(rangeReply.Keys);
        Assert.Equal(2, rangeReply.Values!.Length);
        Assert.Equal([7f, 8f], rangeReply.Values[1]);
    }

    [Fact]
    public async Task ReplyFormatFollowsAcceptAcrossFormats()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":1}""");
        await Wire.PushAsync(Http, name, [4], [9f], 1);

        // JSON request, binary reply.
        using var jsonToKv = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{name}/pull") { Content = Wire.Json("""{"keys":[4]}""") };
        jsonToKv.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.KvBlock));
        using var r1 = await Http.SendAsync(jsonToKv);
        Assert.Equal(MediaTypes.KvBlock, r1.Content.Headers.ContentType?.MediaType);
        Assert.Equal((float[])[9f], Wire.ValuesOf(await r1.Content.ReadAsByteArrayAsync(), [4]));

        // Binary request, JSON reply.
        using var kvToJson = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{name}/pull") { Content = Wire.Kv(Wire.PullBlock([4])) };
        kvToJson.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.Json));
        using var r2 = await Http.SendAsync(kvToJson);
        var json = (await r2.Content.ReadFromJsonAsync(ProtocolJson.Default.KvJson))!;
        Assert.Equal([9f], json.Values![0]);
    }

    [Fact]
    public async Task GetRowReturnsTheRowOrItsInitialValue()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":2,"init":{"kind":"uniform","low":-1,"high":1,"seed":3}}""");
        var initial = (await Http.GetFromJsonAsync($"/v1/tables/{name}/rows/77", ProtocolJson.Default.RowReply))!;
        Assert.Equal(77ul, initial.Key);
        Assert.All(initial.Values, v => Assert.InRange(v, -1f, 1f));
        // Deterministic: the same row twice, and the pull path agrees with the row path.
        var again = (await Http.GetFromJsonAsync($"/v1/tables/{name}/rows/77", ProtocolJson.Default.RowReply))!;
        Assert.Equal(initial.Values, again.Values);
        Assert.Equal(initial.Values, await Wire.PullAsync(Http, name, [77]));

        await Wire.PushAsync(Http, name, [77], [1f, 1f], 2);
        var pushed = (await Http.GetFromJsonAsync($"/v1/tables/{name}/rows/77", ProtocolJson.Default.RowReply))!;
        Assert.Equal(initial.Values[0] + 1f, pushed.Values[0], 5);
    }

    [Fact]
    public async Task NonFiniteValuesPushedAsBinaryReadAsJsonStrings()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":2,"updater":{"kind":"assign"},"allowNonFinite":true}""");
        await Wire.PushAsync(Http, name, [1], [float.NaN, float.PositiveInfinity], 2);
        using var reply = await Http.PostAsync($"/v1/tables/{name}/pull", Wire.Json("""{"keys":[1]}"""));
        using var doc = JsonDocument.Parse(await reply.Content.ReadAsStringAsync());
        var row = doc.RootElement.GetProperty("values")[0];
        Assert.Equal("NaN", row[0].GetString());
        Assert.Equal("Infinity", row[1].GetString());
    }

    [Fact]
    public async Task EmptyPushAndPullAreValid()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":3}""");
        Assert.Equal(new PushResult(0, 0), await Wire.PushAsync(Http, name, [], [], 3));
        Assert.Empty(await Wire.PullAsync(Http, name, []));
    }

    [Fact]
    public async Task Http2ClientsUseTheH2cPort()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":2}""");
        using var h2 = fixture.Server.CreateHttp2Client();
        var result = await Wire.PushAsync(h2, name, [1], [1f, 2f], 2);
        Assert.Equal(1, result.Applied);
        using var reply = await h2.PostAsync($"/v1/tables/{name}/pull", Wire.Kv(Wire.PullBlock([1])));
        Assert.Equal(new Version(2, 0), reply.Version);
        Assert.Equal((float[])[1f, 2f], Wire.ValuesOf(await reply.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task HealthReportsBothAddresses()
    {
        var health = (await Http.GetFromJsonAsync("/v1/health", ProtocolJson.Default.HealthReply))!;
        Assert.Equal("ok", health.Status);
        Assert.Equal(fixture.Server.Http1Uri.ToString().TrimEnd('/'), health.Http1);
        Assert.Equal(fixture.Server.Http2Uri.ToString().TrimEnd('/'), health.Http2);
        Assert.NotEqual(health.Http1, health.Http2);
        Assert.Null(health.Replication);   // a single node has no backups to count bytes for
    }
}
