using ParamDb.Client;
using ParamDb.Protocol;

namespace ParamDb.Client.Tests;

/// <summary>Push then pull through a real node: with the add updater a row is init + Σ pushed.</summary>
[Collection(ServerCollection.Name)]
public sealed class PushPullTests(ServerFixture fixture)
{
    private const float Init = 0.5f;

    private async Task<string> NewAddTableAsync(int dim, ulong? maxKey = null)
    {
        string name = ServerFixture.NewTable();
        await fixture.Client.CreateTableAsync(name, new TableSchema
        {
            Dim = dim,
            Init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = Init },
            Updater = new UpdaterSpec { Kind = UpdaterSpec.Add },
            MaxKey = maxKey,
        });
        return name;
    }

    /// <summary>Row i, element j of a batch: distinct, exactly representable values.</summary>
    private static float[] Rows(int count, int dim, float scale = 1)
    {
        var values = new float[count * dim];
        for (int i = 0; i < values.Length; i++) values[i] = scale * ((i % 251) - 125) / 4f;
        return values;
    }

    private static float[] InitPlus(float[] pushed, int times)
    {
        var expected = new float[pushed.Length];
        for (int i = 0; i < pushed.Length; i++) expected[i] = Init + times * pushed[i];
        return expected;
    }

    [Theory]
    [InlineData(ParamDbCompression.None)]
    [InlineData(ParamDbCompression.Lz4)]
    public async Task AfterNPushesOfDeltaExplicitKeysReadInitPlusNDelta(ParamDbCompression compression)
    {
        var db = fixture.For(compression);
        string table = await NewAddTableAsync(dim: 8);
        ulong[] keys = [0, 3, 4096, 1UL << 40, ulong.MaxValue];
        float[] delta = Rows(keys.Length, 8);

        for (int n = 0; n < 3; n++)
        {
            var result = await db.PushAsync(table, keys, delta);
            Assert.Equal(new PushResult(keys.Length, keys.Length), result);
        }
        var pulled = new float[keys.Length * 8];
        await db.PullAsync(table, keys, pulled);

        Assert.Equal(InitPlus(delta, 3), pulled);
        Assert.Equal(InitPlus(delta, 3), await db.PullAsync(table, keys));
    }

    [Theory]
    [InlineData(ParamDbCompression.None)]
    [InlineData(ParamDbCompression.Lz4)]
    public async Task DenseRangePushThenPullReadsInitPlusPushed(ParamDbCompression compression)
    {
        var db = fixture.For(compression);
        string table = await NewAddTableAsync(dim: 256);
        float[] delta = Rows(4096, 256);

        await db.PushRangeAsync(table, first: 1000, delta, dim: 256);
        var pulled = new float[4096 * 256];
        await db.PullRangeAsync(table, first: 1000, count: 4096, pulled);

        Assert.Equal(InitPlus(delta, 1), pulled);
        Assert.Equal(InitPlus(delta, 1), await db.PullRangeAsync(table, first: 1000, count: 4096));
    }

    [Fact]
    public async Task RangeAndExplicitKeysAddressTheSameRows()
    {
        var db = fixture.Client;
        string table = await NewAddTableAsync(dim: 2);
        await db.PushRangeAsync(table, first: 10, new float[] { 1, 1, 2, 2, 3, 3 }, dim: 2);
        await db.PushAsync(table, new ulong[] { 11, 13 }, new float[] { 10, 10, 20, 20 });

        var rows = await db.PullAsync(table, new ulong[] { 9, 10, 11, 12, 13 });

        Assert.Equal(new[] { Init, Init, 1 + Init, 1 + Init, 12 + Init, 12 + Init, 3 + Init, 3 + Init, 20 + Init, 20 + Init }, rows);
        Assert.Equal(new[] { 12 + Init, 12 + Init }, await db.GetRowAsync(table, 11));
    }

    [Fact]
    public async Task PullIntoASliceFillsOnlyThatSlice()
    {
        var db = fixture.Client;
        string table = await NewAddTableAsync(dim: 4);
        await db.PushAsync(table, new ulong[] { 1, 2 }, Rows(2, 4));
        var buffer = new float[16];
        Array.Fill(buffer, -7f);

        await db.PullAsync(table, new ulong[] { 1, 2 }, buffer.AsMemory(4, 8));

        Assert.All(buffer[..4], v => Assert.Equal(-7f, v));
        Assert.Equal(InitPlus(Rows(2, 4), 1), buffer[4..12]);
        Assert.All(buffer[12..], v => Assert.Equal(-7f, v));
    }

    [Fact]
    public async Task Lz4AndPlainClientsSeeIdenticalRows()
    {
        string table = await NewAddTableAsync(dim: 64);
        ulong[] keys = new ulong[1000];
        for (int i = 0; i < keys.Length; i++) keys[i] = (ulong)i * 7919;
        // A gradient with 90 % zeros, the case LZ4 is for.
        float[] sparse = new float[keys.Length * 64];
        for (int i = 0; i < sparse.Length; i += 10) sparse[i] = i % 97 - 48;

        await fixture.Lz4Client.PushAsync(table, keys, sparse);
        await fixture.Client.PushAsync(table, keys, sparse);
        float[] viaLz4 = await fixture.Lz4Client.PullAsync(table, keys);
        float[] plain = await fixture.Client.PullAsync(table, keys);

        Assert.Equal(plain, viaLz4);
        Assert.Equal(InitPlus(sparse, 2), plain);
    }

    [Fact]
    public async Task MissingRowsReadAsTheInitialValue()
    {
        string table = await NewAddTableAsync(dim: 3);

        Assert.Equal(new[] { Init, Init, Init, Init, Init, Init }, await fixture.Client.PullAsync(table, new ulong[] { 5, 6 }));
        Assert.Equal(new[] { Init, Init, Init }, await fixture.Client.GetRowAsync(table, 123));
        Assert.Empty(await fixture.Client.PullAsync(table, ReadOnlyMemory<ulong>.Empty));
    }

    [Fact]
    public async Task ConcurrentPushesFromOneClientAllApply()
    {
        string table = await NewAddTableAsync(dim: 16);
        ulong[] keys = [1, 2, 3];
        float[] delta = Rows(3, 16);

        var pushes = new Task[32];
        for (int i = 0; i < pushes.Length; i++) pushes[i] = fixture.Client.PushAsync(table, keys, delta);
        await Task.WhenAll(pushes);

        Assert.Equal(InitPlus(delta, pushes.Length), await fixture.Client.PullAsync(table, keys));
    }

    [Fact]
    public async Task Http2ClientRoundTripsLikeHttp1()
    {
        using var h2 = new ParamDbClient(fixture.Server.Http2Uri, new ParamDbClientOptions { HttpVersion = System.Net.HttpVersion.Version20 });
        string table = await NewAddTableAsync(dim: 32);
        float[] delta = Rows(512, 32);

        await h2.PushRangeAsync(table, 0, delta, dim: 32);

        Assert.Equal(InitPlus(delta, 1), await h2.PullRangeAsync(table, 0, 512));
        Assert.Equal(await fixture.Client.PullRangeAsync(table, 0, 512), await h2.PullRangeAsync(table, 0, 512));
    }

    [Fact]
    public async Task CallerOwnedHttpClientWorksAndIsNotDisposed()
    {
        using var http = fixture.Server.CreateClient();
        string table = await NewAddTableAsync(dim: 2);

        using (var db = new ParamDbClient(http, new ParamDbClientOptions { Compression = ParamDbCompression.Lz4 }))
        {
            await db.PushAsync(table, new ulong[] { 1 }, new float[] { 1, 2 });
        }

        using var again = new ParamDbClient(http);
        Assert.Equal(new[] { 1 + Init, 2 + Init }, await again.PullAsync(table, new ulong[] { 1 }));
    }
}
