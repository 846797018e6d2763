namespace ParamDb.Storage.Tests;

/// <summary>Consistent pulls wait for clocks without a thread; leases, removals, deletes and timeouts end the wait.</summary>
public sealed class ClockWaitTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task WaitEndsWhenTheSlowestLiveWorkerReachesTheTarget()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint fast = store.RegisterWorker("fast", ["t"], 60_000).Id, slow = store.RegisterWorker("slow", ["t"], 60_000).Id;
        store.Tick(t, new WorkerStamp(fast, 5));
        Task<ClockWaitResult> wait = store.WaitForClockAsync(t, 3, Long, default).AsTask();
        store.Tick(t, new WorkerStamp(slow, 2));
        Assert.False(wait.IsCompleted);
        store.Push(t, [1], [1f], new WorkerStamp(slow, 3));
        ClockWaitResult result = await wait.WaitAsync(Long);
        Assert.Equal((ClockWaitStatus.Reached, 3UL), (result.Status, result.ClockMin));
    }

    [Fact]
    public async Task ThousandsOfWaitsAreReleasedInTargetOrder()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        Task<ClockWaitResult>[] waits = [.. Enumerable.Range(0, 5000).Select(i => store.WaitForClockAsync(t, 1 + (ulong)(i % 10), Long, default).AsTask())];
        store.Tick(t, new WorkerStamp(w, 5));
        await Task.WhenAll(waits.Where((_, i) => i % 10 < 5)).WaitAsync(Long);
        Assert.All(waits.Where((_, i) => i % 10 >= 5), task => Assert.False(task.IsCompleted));
        store.Tick(t, new WorkerStamp(w, 10));
        ClockWaitResult[] all = await Task.WhenAll(waits).WaitAsync(Long);
        Assert.All(all, r => Assert.Equal(ClockWaitStatus.Reached, r.Status));
    }

    [Fact]
    public async Task TimeoutNamesTheWorkersBehind()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint a = store.RegisterWorker("a", ["t"], 60_000).Id, b = store.RegisterWorker("b", ["t"], 60_000).Id;
        store.RegisterWorker("other-table", ["u"], 60_000);
        store.Tick(t, new WorkerStamp(a, 9));
        store.Tick(t, new WorkerStamp(b, 1));
        ClockWaitResult result = await store.WaitForClockAsync(t, 4, TimeSpan.FromMilliseconds(50), default);
        Assert.Equal(ClockWaitStatus.TimedOut, result.Status);
        Assert.Equal(1UL, result.ClockMin);
        Assert.Equal([new LaggingWorker(b, "b", 1)], result.Behind);
    }

    [Fact]
    public async Task AnExpiredLeaseStopsCountingAndReleasesWaits()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint live = store.RegisterWorker("live", [], 60_000).Id;
        uint gone = store.RegisterWorker("gone", [], WorkerLimitsMin).Id;
        store.Tick(t, new WorkerStamp(live, 3));
        ClockWaitResult result = await store.WaitForClockAsync(t, 3, Long, default);
        Assert.Equal(ClockWaitStatus.Reached, result.Status);
        Assert.False(Assert.Single(store.ListWorkers(), s => s.Id == gone).Live);
        // Heard from again, it counts again.
        Assert.True(store.TryHeartbeat(gone, out WorkerState state));
        Assert.True(state.Live);
        Assert.Equal(0UL, store.ClockMin(t));
    }

    private const int WorkerLimitsMin = ParamDb.Protocol.WorkerLimits.MinLeaseMs;

    [Fact]
    public async Task RemovingTheLaggingWorkerReleasesWaits()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint a = store.RegisterWorker("a", [], 60_000).Id, b = store.RegisterWorker("b", [], 60_000).Id;
        store.Tick(t, new WorkerStamp(a, 2));
        var wait = store.WaitForClockAsync(t, 2, Long, default).AsTask();
        Assert.False(wait.IsCompleted);
        Assert.True(store.RemoveWorker(b));
        Assert.Equal(ClockWaitStatus.Reached, (await wait.WaitAsync(Long)).Status);
    }

    [Fact]
    public async Task DeletingTheTableOrClosingTheStoreEndsWaits()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1)), u = TestStore.Create(store, "u", TestStore.Schema(1));
        store.RegisterWorker("idle", [], 60_000);
        var onT = store.WaitForClockAsync(t, 1, Long, default).AsTask();
        var onU = store.WaitForClockAsync(u, 1, Long, default).AsTask();
        Assert.True(store.DeleteTable("t"));
        Assert.Equal(ClockWaitStatus.TableDeleted, (await onT.WaitAsync(Long)).Status);
        Assert.False(onU.IsCompleted);
        store.EndClockWaits();
        Assert.Equal(ClockWaitStatus.Closing, (await onU.WaitAsync(Long)).Status);
    }

    [Fact]
    public async Task WithNoLiveWorkerNothingIsWaitedFor()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        ClockWaitResult result = await store.WaitForClockAsync(t, 100, Long, default);
        Assert.Equal((ClockWaitStatus.Reached, 0UL), (result.Status, result.ClockMin));
    }
}
