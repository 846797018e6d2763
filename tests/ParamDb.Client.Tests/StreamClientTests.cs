using ParamDb.Client;
using ParamDb.Protocol;

namespace ParamDb.Client.Tests;

/// <summary>
/// <see cref="ParamDbStream"/> against a real node's h2c port: values round-trip, many requests in flight are
/// matched to their replies, and one refused request does not disturb the others. With the add updater and a
/// constant initial value, a row is init + Σ pushed.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class StreamClientTests(ServerFixture fixture)
{
    private const float Init = 0.5f;

    private async Task<string> NewAddTableAsync(int dim)
    {
        string name = ServerFixture.NewTable("s");
        await fixture.Client.CreateTableAsync(name, new TableSchema
        {
            Dim = dim,
            Init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = Init },
            Updater = new UpdaterSpec { Kind = UpdaterSpec.Add },
        });
        return name;
    }

    /// <summary>Distinct, exactly representable values; <paramref name="seed"/> tells batches apart.</summary>
    internal static float[] Rows(int count, int dim, int seed = 0)
    {
        var values = new float[count * dim];
        for (int i = 0; i < values.Length; i++) values[i] = ((i + 37 * seed) % 251 - 125) / 4f;
        return values;
    }

    internal static float[] InitPlus(float[] pushed, int times = 1)
    {
        var expected = new float[pushed.Length];
        for (int i = 0; i < pushed.Length; i++) expected[i] = Init + times * pushed[i];
        return expected;
    }

    [Theory]
    [InlineData(ParamDbCompression.None)]
    [InlineData(ParamDbCompression.Lz4)]
    public async Task PushThenPullOfExplicitKeysReadsInitPlusPushed(ParamDbCompression compression)
    {
        string table = await NewAddTableAsync(dim: 8);
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri, new ParamDbStreamOptions { Compression = compression });
        ulong[] keys = [0, 3, 4096, 1UL << 40, ulong.MaxValue];
        float[] delta = Rows(keys.Length, 8);

        PushResult pushed = await stream.PushAsync(table, keys, delta);
        var into = new float[keys.Length * 8];
        PullResult pulled = await stream.PullAsync(table, keys, into);

        Assert.Equal(new PushResult(keys.Length, keys.Length), pushed);
        Assert.Equal(InitPlus(delta), into);
        Assert.Equal(0UL, pulled.ClockMin);
        Assert.Equal(InitPlus(delta), await stream.PullAsync(table, keys));
        // The REST API sees the same rows.
        Assert.Equal(InitPlus(delta), await fixture.Client.PullAsync(table, keys));
    }

    [Theory]
    [InlineData(ParamDbCompression.None)]
    [InlineData(ParamDbCompression.Lz4)]
    public async Task A4MiBRangeWrittenFromCallerMemoryRoundTrips(ParamDbCompression compression)
    {
        // 4,096 rows × 256 floats: the frame is far above the copy limit, so keys and values go from these arrays.
        string table = await NewAddTableAsync(dim: 256);
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);
        float[] delta = Rows(4096, 256);
        var options = new ParamDbCallOptions { Compression = compression };

        Assert.Equal(new PushResult(4096, 4096), await stream.PushRangeAsync(table, 1000, delta, dim: 256, options: options));
        var into = new float[4096 * 256];
        await stream.PullRangeAsync(table, 1000, 4096, into, options: options);

        Assert.Equal(InitPlus(delta), into);
        Assert.Equal(InitPlus(delta), await stream.PullRangeAsync(table, 1000, 4096, options: options));
    }

    [Fact]
    public async Task ALargeExplicitKeyPushAndPullMatchKeysChunkByChunk()
    {
        // 20,000 keys: the reply's keys section (160 KB) is longer than the reader's 64 KiB buffer.
        string table = await NewAddTableAsync(dim: 4);
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);
        var keys = new ulong[20_000];
        for (int i = 0; i < keys.Length; i++) keys[i] = (ulong)i * 7919 + 11;
        float[] delta = Rows(keys.Length, 4);

        await stream.PushAsync(table, keys, delta);

        Assert.Equal(InitPlus(delta), await stream.PullAsync(table, keys));
    }

    [Fact]
    public async Task RangeAndExplicitKeyRequestsInTurnEachAddressTheirOwnRows()
    {
        // Each awaited call recycles its pooled request before the next one takes it: nothing of a range request
        // (its first key) may leak into the explicit-key request after it, or vice versa.
        string table = await NewAddTableAsync(dim: 2);
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);

        for (int round = 0; round < 4; round++)
        {
            await stream.PushRangeAsync(table, 100, new float[] { 1, 1, 1, 1 }, dim: 2);
            await stream.PushAsync(table, new ulong[] { 5 }, new float[] { 2, 2 });
            await stream.PullRangeAsync(table, 100, 2);
            await stream.PullAsync(table, new ulong[] { 7 });
        }

        Assert.Equal(new[] { 4.5f, 4.5f, 4.5f, 4.5f }, await fixture.Client.PullRangeAsync(table, 100, 2));
        Assert.Equal(new[] { 0.5f, 0.5f, 8.5f, 8.5f, 0.5f, 0.5f }, await fixture.Client.PullAsync(table, new ulong[] { 0, 5, 7 }));
    }

    [Fact]
    public async Task OneThousandPipelinedPushesAndPullsAreEachMatchedToTheirOwnReply()
    {
        const int n = 1024, dim = 8;
        string table = await NewAddTableAsync(dim);
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);
        float[] rows = Rows(n, dim);

        // All pushes are issued before any is awaited: at most 64 on the wire, the rest queued in order.
        var pushes = new Task<PushResult>[n];
        for (int i = 0; i < n; i++) pushes[i] = stream.PushAsync(table, new[] { (ulong)i }, rows.AsMemory(i * dim, dim)).AsTask();
        var pulls = new Task<float[]>[n];
        var order = Enumerable.Range(0, n).Reverse().ToArray(); // pulled in another order than pushed
        foreach (int i in order) pulls[i] = stream.PullAsync(table, new[] { (ulong)i }).AsTask();

        PushResult[] pushed = await Task.WhenAll(pushes);
        float[][] pulled = await Task.WhenAll(pulls);

        Assert.All(pushed, p => Assert.Equal(new PushResult(1, 1), p));
        for (int i = 0; i < n; i++) Assert.Equal(InitPlus(rows[(i * dim)..((i + 1) * dim)]), pulled[i]);
    }

    [Fact]
    public async Task ARefusedRequestFailsAloneAndTheOthersAroundItSucceed()
    {
        string table = await NewAddTableAsync(dim: 4);
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);
        float[] rows = Rows(64, 4);
        await stream.PushRangeAsync(table, 0, rows, dim: 4);

        var good = new List<(int Key, Task<float[]> Pull)>();
        var missingTable = new List<Task<float[]>>();
        var wrongDim = new List<Task<PushResult>>();
        for (int i = 0; i < 64; i++)
        {
            good.Add((i, stream.PullAsync(table, new[] { (ulong)i }).AsTask()));
            if (i % 8 == 0) missingTable.Add(stream.PullAsync("no-such-table-" + i, new[] { (ulong)i }).AsTask());
            if (i % 8 == 4) wrongDim.Add(stream.PushAsync(table, new[] { (ulong)i }, new float[3]).AsTask());
        }

        foreach (var pull in missingTable)
            Assert.Equal(ProblemCodes.TableNotFound, (await Assert.ThrowsAsync<ParamDbException>(() => pull)).Code);
        foreach (var push in wrongDim)
        {
            var e = await Assert.ThrowsAsync<ParamDbException>(() => push);
            Assert.Equal((400, ProblemCodes.DimMismatch), (e.Status, e.Code));
        }
        foreach (var (key, pull) in good) Assert.Equal(InitPlus(rows[(key * 4)..(key * 4 + 4)]), await pull);
        // A refused push changed nothing.
        Assert.Equal(InitPlus(rows), await stream.PullRangeAsync(table, 0, 64));
    }

    [Fact]
    public async Task ArgumentsTheServerWouldRefuseThrowBeforeAnythingIsSent()
    {
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);

        await Assert.ThrowsAsync<ArgumentException>(async () => await stream.PushAsync("t", new ulong[] { 2, 1 }, new float[2]));
        await Assert.ThrowsAsync<ArgumentException>(async () => await stream.PushAsync("t", new ulong[] { 1, 2 }, new float[3]));
        await Assert.ThrowsAsync<ArgumentException>(async () => await stream.PullAsync("t", new ulong[] { 1, 2 }, new float[3]));
        await Assert.ThrowsAsync<ArgumentException>(async () => await stream.PullAsync("bad/name", new ulong[] { 1 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await stream.PullRangeAsync("t", ulong.MaxValue, 2));
    }

    [Fact]
    public async Task PushPullSendsBothAtOnceAndThePullSeesThePush()
    {
        string table = await NewAddTableAsync(dim: 4);
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);
        ulong[] keys = [5, 6, 7];
        float[] delta = Rows(3, 4);
        var into = new float[12];

        PushPullResult first = await stream.PushPullAsync(table, keys, delta, into);
        Assert.Equal(new PushResult(3, 3), first.Push);
        Assert.Equal(InitPlus(delta, 1), into);

        await stream.PushPullAsync(table, keys, delta, into);
        Assert.Equal(InitPlus(delta, 2), into);
    }

    [Fact]
    public async Task AnUnknownTablesPushPullThrowsThePushsRefusal()
    {
        await using var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);

        var e = await Assert.ThrowsAsync<ParamDbException>(async () => await stream.PushPullAsync("nowhere", new ulong[] { 1 }, new float[2], new float[2]));

        Assert.Equal(ProblemCodes.TableNotFound, e.Code);
    }

    [Fact]
    public async Task DisposeWaitsForRepliesAlreadyDueAndThenRefusesNewCalls()
    {
        string table = await NewAddTableAsync(dim: 2);
        var stream = await ParamDbStream.ConnectAsync(fixture.Server.Http2Uri);
        var pushes = new Task<PushResult>[100];
        for (int i = 0; i < pushes.Length; i++) pushes[i] = stream.PushAsync(table, new[] { (ulong)i }, new float[] { 1, 2 }).AsTask();

        await stream.DisposeAsync();

        Assert.All(pushes, p => Assert.Equal(new PushResult(1, 1), p.Result)); // all answered before DisposeAsync returned
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await stream.PullAsync(table, new ulong[] { 1 }));
        await stream.DisposeAsync(); // twice is fine
    }

    [Fact]
    public async Task ConnectingToTheHttp1PortFailsInsteadOfHanging()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => ParamDbStream.ConnectAsync(fixture.Server.Http1Uri,
            new ParamDbStreamOptions { ConnectTimeout = TimeSpan.FromSeconds(5) }));

        // h2c prior knowledge to an HTTP/1.1-only port cannot even speak HTTP/2: a transport error, not a hang.
        Assert.True(e is HttpRequestException or IOException or ParamDbException, e.ToString());
    }
}
