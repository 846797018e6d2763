using System.Diagnostics;
using ParamDb.Client;
using ParamDb.Protocol;
using static ParamDb.Client.Tests.StreamClientTests;

namespace ParamDb.Client.Tests;

/// <summary>
/// <see cref="ParamDbWorker"/> against a real node: registration, lease and leaving through the workers API; the
/// clock rules; and what the clocks make observable — exactly-once pushes and automatic ticks.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class WorkerTests(ServerFixture fixture)
{
    private async Task<string> NewAddTableAsync(int dim)
    {
        string name = ServerFixture.NewTable("w");
        await fixture.Client.CreateTableAsync(name, new TableSchema
        {
            Dim = dim,
            Init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = 0.5f },
            Updater = new UpdaterSpec { Kind = UpdaterSpec.Add },
        });
        return name;
    }

    private Task<ParamDbWorker> RegisterAsync(string name, string[] tables, TimeSpan? lease = null, ParamDbWorkerOptions? options = null) =>
        ParamDbWorker.RegisterAsync(fixture.Server.Http2Uri, name, tables, lease, options);

    private async Task<WorkerInfo?> FindAsync(uint id)
    {
        foreach (WorkerInfo w in await fixture.Client.ListWorkersAsync()) if (w.Worker == id) return w;
        return null;
    }

    [Fact]
    public async Task ARegisteredWorkerIsListedLiveWithItsTablesAndLeavesOnDispose()
    {
        string table = await NewAddTableAsync(dim: 2);
        var worker = await RegisterAsync("lister", [table], TimeSpan.FromSeconds(20));

        WorkerInfo? listed = await FindAsync(worker.Id);
        Assert.NotNull(listed);
        Assert.Equal(("lister", 20_000, true), (listed.Name, listed.LeaseMs, listed.Live));
        Assert.Equal([table], listed.Tables);
        Assert.Equal(1UL, worker.Clock);

        await worker.DisposeAsync();

        Assert.Null(await FindAsync(worker.Id));
        var gone = await Assert.ThrowsAsync<ParamDbException>(() => fixture.Client.HeartbeatWorkerAsync(worker.Id));
        Assert.Equal(ProblemCodes.WorkerNotFound, gone.Code);
    }

    [Fact]
    public async Task HeartbeatsKeepTheLeaseLiveForMoreThanTwoLeasePeriodsWhileAnUnrenewedOneExpires()
    {
        // 2 s: this 2-core box has been seen to stall a whole process for ~750 ms, and a heartbeat every third
        // of the lease rides out the loss of two; a 300 ms lease did not survive such a stall.
        string table = await NewAddTableAsync(dim: 2);
        var lease = TimeSpan.FromSeconds(2);
        await using var worker = await RegisterAsync("beating", [table], lease);
        WorkerInfo silent = await fixture.Client.RegisterWorkerAsync(new WorkerRegistration { Name = "silent", Tables = [table], LeaseMs = 2_000 });
        try
        {
            var watch = Stopwatch.StartNew();
            int looks = 0;
            await Eventually.TrueAsync(async () =>
            {
                WorkerInfo? w = await FindAsync(worker.Id);
                Assert.True(w is { Live: true }, $"worker not live after {watch.ElapsedMilliseconds} ms");
                looks++;
                return watch.Elapsed > 2.2 * lease;
            }, "more than two lease periods passed", TimeSpan.FromSeconds(30));

            Assert.True(looks > 10);
            Assert.False(worker.LeaseLost);
            // The control: the same lease without heartbeats ran out meanwhile.
            await Eventually.TrueAsync(async () => (await FindAsync(silent.Worker))?.Live == false, "the silent worker's lease expired");
        }
        finally
        {
            await fixture.Client.RemoveWorkerAsync(silent.Worker);
        }
    }

    [Fact]
    public async Task ASecondPushToATableAtTheSameClockIsRefusedAndTheNextIterationMayPushAgain()
    {
        string table = await NewAddTableAsync(dim: 2);
        await using var worker = await RegisterAsync("once", [table]);
        float[] delta = [1, 2];

        Assert.Equal(new PushResult(1, 1), await worker.PushAsync(table, new ulong[] { 1 }, delta));
        var twice = await Assert.ThrowsAsync<InvalidOperationException>(async () => await worker.PushAsync(table, new ulong[] { 2 }, delta));
        Assert.Contains("already pushed at clock 1", twice.Message);

        await worker.EndIterationAsync();
        Assert.Equal(2UL, worker.Clock);
        Assert.Equal(new PushResult(1, 1), await worker.PushAsync(table, new ulong[] { 2 }, delta));
        Assert.Equal(InitPlus([1, 2, 1, 2]), await fixture.Client.PullAsync(table, new ulong[] { 1, 2 }));
    }

    [Fact]
    public async Task ARefusedPushGivesTheTableBackForTheSameClock()
    {
        string table = await NewAddTableAsync(dim: 2);
        await using var worker = await RegisterAsync("retry", [table]);

        var refused = await Assert.ThrowsAsync<ParamDbException>(async () => await worker.PushAsync(table, new ulong[] { 1 }, new float[3]));
        Assert.Equal(ProblemCodes.DimMismatch, refused.Code);

        Assert.Equal(new PushResult(1, 1), await worker.PushAsync(table, new ulong[] { 1 }, new float[] { 3, 4 }));
    }

    [Fact]
    public async Task PushingTheSameBatchAgainAtTheSameClockIsSkippedSoTheRowShowsOneApplication()
    {
        // What makes a retry exactly-once, through the stream with an explicit stamp (the worker itself refuses).
        string table = await NewAddTableAsync(dim: 4);
        await using var worker = await RegisterAsync("dedup", [table]);
        ulong[] keys = [7, 8];
        float[] delta = Rows(2, 4);
        var stamp = new ClockStamp(worker.Id, worker.Clock);

        PushResult first = await worker.Stream.PushAsync(table, keys, delta, stamp);
        PushResult again = await worker.Stream.PushAsync(table, keys, delta, stamp);

        Assert.Equal(new PushResult(2, 2), first);
        Assert.Equal(new PushResult(2, 0), again);
        Assert.Equal(InitPlus(delta), await worker.PullAsync(table, keys));
    }

    [Fact]
    public async Task EndingAnIterationTicksTheTablesNotPushedSoASequentialPullOfThemDoesNotWait()
    {
        string a = await NewAddTableAsync(dim: 2), b = await NewAddTableAsync(dim: 2);
        var quick = new ParamDbWorkerOptions { Stream = new ParamDbStreamOptions { ClockWaitTimeout = TimeSpan.FromSeconds(5) } };
        await using var pusher = await RegisterAsync("pusher", [a, b], options: quick);
        await using var reader = await RegisterAsync("reader", [a, b], options: quick);

        // Iteration 1: the pusher pushes A only; the reader pushes nothing. Both end the iteration.
        await pusher.PushAsync(a, new ulong[] { 1 }, new float[] { 1, 1 });
        await pusher.EndIterationAsync();
        await reader.EndIterationAsync();

        // At clock 2 a sequential pull of B needs every live worker of B at clock 1: the pusher got there by its tick.
        var sequential = new ParamDbCallOptions { Consistency = Consistency.Sequential };
        var into = new float[2];
        PullResult pulled = await reader.PullAsync(b, new ulong[] { 1 }, into, sequential);

        Assert.Equal(2UL, reader.Clock);
        Assert.Equal(new[] { 0.5f, 0.5f }, into);
        Assert.True(pulled.ClockMin >= 1, $"clock min {pulled.ClockMin}");
        Assert.Equal(new[] { 1.5f, 1.5f }, await reader.PullAsync(a, new ulong[] { 1 }, sequential));
    }

    [Fact]
    public async Task ASequentialPullWaitingOnAWorkerThatNeverTicksTimesOutNamingIt()
    {
        // The control for the test above: without the tick, the same pull waits and times out.
        string b = await NewAddTableAsync(dim: 2);
        var quick = new ParamDbWorkerOptions { Stream = new ParamDbStreamOptions { ClockWaitTimeout = TimeSpan.FromMilliseconds(300) } };
        await using var reader = await RegisterAsync("reader", [b], options: quick);
        WorkerInfo idle = await fixture.Client.RegisterWorkerAsync(new WorkerRegistration { Name = "idle", Tables = [b], LeaseMs = 60_000 });
        try
        {
            await reader.EndIterationAsync();

            var e = await Assert.ThrowsAsync<ParamDbException>(async () =>
                await reader.PullAsync(b, new ulong[] { 1 }, new ParamDbCallOptions { Consistency = Consistency.Sequential }));

            Assert.Equal((408, ProblemCodes.ClockWaitTimeout), (e.Status, e.Code));
            Assert.Equal(1UL, e.Problem?.Target);
            Assert.Contains(e.Problem!.Behind!, w => w.Worker == idle.Worker);
        }
        finally
        {
            await fixture.Client.RemoveWorkerAsync(idle.Worker);
        }
    }

    [Fact]
    public async Task OneThousandConcurrentPullsFromOneWorkerAreMatchedToTheirKeys()
    {
        const int n = 1000;
        string table = await NewAddTableAsync(dim: 4);
        await using var worker = await RegisterAsync("many", [table]);
        float[] rows = Rows(n, 4);
        await worker.PushRangeAsync(table, 0, rows, dim: 4);

        var pulls = new Task<float[]>[n];
        for (int i = 0; i < n; i++) pulls[i] = worker.PullAsync(table, new[] { (ulong)(n - 1 - i) }).AsTask();
        float[][] pulled = await Task.WhenAll(pulls);

        for (int i = 0; i < n; i++)
        {
            int key = n - 1 - i;
            Assert.Equal(InitPlus(rows[(key * 4)..(key * 4 + 4)]), pulled[i]);
        }
    }

    [Fact]
    public async Task PushPullAtTheCurrentClockReturnsTheRowsWithThePushApplied()
    {
        string table = await NewAddTableAsync(dim: 3);
        await using var worker = await RegisterAsync("pushpull", [table]);
        ulong[] keys = [1, 2];
        float[] delta = Rows(2, 3);
        var into = new float[6];

        PushPullResult result = await worker.PushPullAsync(table, keys, delta, into);

        Assert.Equal(new PushResult(2, 2), result.Push);
        Assert.Equal(InitPlus(delta), into);
    }

    [Fact]
    public async Task RegisteringWithoutTablesIsRefusedBeforeAnythingIsSent()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => RegisterAsync("none", []));
        await Assert.ThrowsAsync<ArgumentException>(() => RegisterAsync("twice", ["t", "t"]));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => RegisterAsync("short", ["t"], TimeSpan.FromMilliseconds(10)));
    }
}
