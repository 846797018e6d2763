using System.Net.Http.Headers;
using ParamDb.Protocol;

namespace ParamDb.Server.Tests;

public sealed class CompressionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task Lz4PushAndLz4PullGiveTheSameRowsAsPlain()
    {
        var name = ServerFixture.NewTable("lz4");
        await Wire.CreateTableAsync(Http, name, """{"dim":16}""");
        var keys = Enumerable.Range(0, 500).Select(i => (ulong)(i * 7)).ToArray();
        // Sparse gradients (90 % zeros) are what LZ4 is for.
        var values = new float[keys.Length * 16];
        for (int i = 0; i < values.Length; i += 10) values[i] = i * 0.25f;

        using (var push = await Http.PostAsync($"/v1/tables/{name}/push", Wire.Kv(Wire.PushBlock(keys, values, 16), lz4: true)))
            Assert.True(push.IsSuccessStatusCode, await push.Content.ReadAsStringAsync());

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{name}/pull") { Content = Wire.Kv(Wire.PullBlock(keys), lz4: true) };
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue(MediaTypes.Lz4Encoding));
        using var reply = await Http.SendAsync(request);
        Assert.Contains(MediaTypes.Lz4Encoding, reply.Content.Headers.ContentEncoding);
        var compressed = await reply.Content.ReadAsByteArrayAsync();
        var block = Wire.Unlz4(compressed);
        Assert.True(compressed.Length < block.Length / 2, $"{compressed.Length} compressed vs {block.Length}");
        Assert.Equal(values, Wire.ValuesOf(block, keys));
        Assert.Equal(values, await Wire.PullAsync(Http, name, keys));
    }

    [Fact]
    public async Task ReplyIsPlainWithoutAcceptEncodingOrWithQZero()
    {
        var name = ServerFixture.NewTable("lz4");
        await Wire.CreateTableAsync(Http, name, """{"dim":2}""");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{name}/pull") { Content = Wire.Kv(Wire.PullBlock([1])) };
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue(MediaTypes.Lz4Encoding, 0));
        using var reply = await Http.SendAsync(request);
        Assert.Empty(reply.Content.Headers.ContentEncoding);
        Assert.Equal((float[])[0f, 0f], Wire.ValuesOf(await reply.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Lz4JsonRequestsWorkToo()
    {
        var name = ServerFixture.NewTable("lz4");
        await Wire.CreateTableAsync(Http, name, """{"dim":2}""");
        var content = new ByteArrayContent(Wire.Lz4("""{"keys":[3],"values":[[1.5,2.5]]}"""u8.ToArray()));
        content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.Json);
        content.Headers.ContentEncoding.Add(MediaTypes.Lz4Encoding);
        using var push = await Http.PostAsync($"/v1/tables/{name}/push", content);
        Assert.True(push.IsSuccessStatusCode, await push.Content.ReadAsStringAsync());
        Assert.Equal((float[])[1.5f, 2.5f], await Wire.PullAsync(Http, name, [3]));
    }
}
