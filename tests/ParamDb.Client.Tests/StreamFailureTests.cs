using ParamDb.Client;
using ParamDb.Protocol;
using static ParamDb.Client.Tests.StreamClientTests;

namespace ParamDb.Client.Tests;

/// <summary>
/// The stream when the network fails: a <see cref="TcpRelay"/> holds the server's replies, then cuts the
/// connection, so requests are lost exactly after the server has seen them.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class StreamFailureTests(ServerFixture fixture)
{
    private async Task<string> NewAddTableAsync(int dim)
    {
        string name = ServerFixture.NewTable("f");
        await fixture.Client.CreateTableAsync(name, new TableSchema
        {
            Dim = dim,
            Init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = 0.5f },
            Updater = new UpdaterSpec { Kind = UpdaterSpec.Add },
        });
        return name;
    }

    /// <summary>True once the REST API shows <paramref name="expected"/> for the keys: the server applied the push.</summary>
    private Func<Task<bool>> RowsAre(string table, ulong[] keys, float[] expected) =>
        async () => (await fixture.Client.PullAsync(table, keys)).AsSpan().SequenceEqual(expected);

    [Fact]
    public async Task WithoutRetriesALostConnectionFailsEveryRequestOnTheWireAndTheNextCallReconnects()
    {
        string table = await NewAddTableAsync(dim: 2);
        await using var relay = new TcpRelay(fixture.Server.Http2Uri);
        await using var stream = await ParamDbStream.ConnectAsync(relay.Uri, new ParamDbStreamOptions { MaxRetries = 0 });
        ulong[] keys = [1];
        float[] delta = [1, 2];

        relay.HoldReplies();
        var pull = stream.PullAsync(table, keys).AsTask();
        var push = stream.PushAsync(table, keys, delta).AsTask();
        await Eventually.TrueAsync(RowsAre(table, keys, InitPlus(delta)), "the push reached the server");
        relay.SeverAll();
        relay.ReleaseReplies();

        await Assert.ThrowsAsync<IOException>(() => pull);
        await Assert.ThrowsAsync<IOException>(() => push);
        Assert.Equal(InitPlus(delta), await stream.PullAsync(table, keys)); // over a new connection
        Assert.Equal(2, relay.Accepted);
    }

    [Fact]
    public async Task AfterALostConnectionPullsAreReplayedButAnAnonymousPushIsNot()
    {
        string table = await NewAddTableAsync(dim: 2);
        await using var relay = new TcpRelay(fixture.Server.Http2Uri);
        await using var stream = await ParamDbStream.ConnectAsync(relay.Uri);
        ulong[] keys = [1];
        float[] delta = [1, 2];

        relay.HoldReplies();
        var push = stream.PushAsync(table, keys, delta).AsTask();
        var pull = stream.PullAsync(table, keys).AsTask();
        await Eventually.TrueAsync(RowsAre(table, keys, InitPlus(delta)), "the push reached the server");
        relay.SeverAll();
        relay.ReleaseReplies();

        // Replaying the push could apply it twice (nothing tells the server it is a replay), so it fails.
        var lost = await Assert.ThrowsAsync<IOException>(() => push);
        Assert.Contains("may or may not have been applied", lost.Message);
        Assert.Equal(InitPlus(delta), await pull); // replayed on a new stream
        Assert.Equal(InitPlus(delta), await fixture.Client.PullAsync(table, keys)); // applied once, not twice
    }

    [Fact]
    public async Task AStampedPushLostWithItsConnectionIsReplayedAtTheSameClockAndAppliedOnce()
    {
        string table = await NewAddTableAsync(dim: 4);
        await using var relay = new TcpRelay(fixture.Server.Http2Uri);
        await using var worker = await ParamDbWorker.RegisterAsync(relay.Uri, "replayer", [table],
            options: new ParamDbWorkerOptions { RestAddress = fixture.Server.Http1Uri });
        ulong[] keys = [10, 20, 30];
        float[] delta = Rows(3, 4);

        relay.HoldReplies();
        var push = worker.PushAsync(table, keys, delta).AsTask();
        await Eventually.TrueAsync(RowsAre(table, keys, InitPlus(delta)), "the push reached the server");
        relay.SeverAll(); // the reply is lost: the client cannot know the push was applied
        relay.ReleaseReplies();

        PushResult replayed = await push;

        Assert.Equal(new PushResult(3, 0), replayed); // the replay was recognised and skipped
        Assert.Equal(InitPlus(delta), await fixture.Client.PullAsync(table, keys));
        Assert.True(relay.Accepted >= 2, "the push went out again on a new connection");
    }

    [Fact]
    public async Task ACancelledCallEndsAtOnceAndALateReplyIsDropped()
    {
        string table = await NewAddTableAsync(dim: 2);
        await using var relay = new TcpRelay(fixture.Server.Http2Uri);
        await using var stream = await ParamDbStream.ConnectAsync(relay.Uri);
        using var cancel = new CancellationTokenSource();

        relay.HoldReplies();
        var pull = stream.PullAsync(table, new ulong[] { 1 }, cancellationToken: cancel.Token).AsTask();
        var other = stream.PullAsync(table, new ulong[] { 2 }).AsTask();
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pull);
        relay.ReleaseReplies();
        Assert.Equal(new[] { 0.5f, 0.5f }, await other); // the cancelled request's reply came and was skipped
    }

    [Fact]
    public async Task ACallPastItsTimeoutThrowsTimeoutException()
    {
        string table = await NewAddTableAsync(dim: 2);
        await using var relay = new TcpRelay(fixture.Server.Http2Uri);
        await using var stream = await ParamDbStream.ConnectAsync(relay.Uri);

        relay.HoldReplies();
        var pull = stream.PullAsync(table, new ulong[] { 1 }, options: new ParamDbCallOptions { Timeout = TimeSpan.FromMilliseconds(200) }).AsTask();

        await Assert.ThrowsAsync<TimeoutException>(() => pull);
        relay.ReleaseReplies();
    }

    [Fact]
    public async Task RequestsBeyondMaxInFlightWaitInTheQueueAndAllComplete()
    {
        string table = await NewAddTableAsync(dim: 2);
        await using var relay = new TcpRelay(fixture.Server.Http2Uri);
        await using var stream = await ParamDbStream.ConnectAsync(relay.Uri, new ParamDbStreamOptions { MaxInFlight = 4 });
        float[] delta = [1, 1];

        relay.HoldReplies();
        var pushes = new Task<PushResult>[40];
        for (int i = 0; i < pushes.Length; i++) pushes[i] = stream.PushAsync(table, new[] { (ulong)i }, delta).AsTask();
        // Only 4 may be on the wire without replies: the server sees 4 pushes and no more.
        await Eventually.TrueAsync(async () => (await fixture.Client.PullRangeAsync(table, 0, 4)).All(v => v == 1.5f), "the first 4 pushes were applied");
        Assert.Equal(new[] { 0.5f, 0.5f }, await fixture.Client.PullAsync(table, new ulong[] { 4 }));
        relay.ReleaseReplies();

        Assert.All(await Task.WhenAll(pushes), p => Assert.Equal(new PushResult(1, 1), p));
        Assert.All(await fixture.Client.PullRangeAsync(table, 0, 40), v => Assert.Equal(1.5f, v));
    }
}
