using ParamDb.Storage.Versions;

namespace ParamDb.Storage.Tests;

/// <summary>Exactly-once pushes per (worker, clock) per range, ticks, and clocks that survive a reopen.</summary>
public sealed class VectorClockTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    private static float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();

    [Fact]
    public void RetriedPushAtTheSameClockIsAppliedOnce()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(2));
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        ulong[] keys = [1, 9000, 1UL << 40];
        Assert.Equal(new PushOutcome(PushStatus.Ok, 3), store.Push(t, keys, Ones(6), new WorkerStamp(w, 1)));
        Assert.Equal(new PushOutcome(PushStatus.Ok, 0), store.Push(t, keys, Ones(6), new WorkerStamp(w, 1)));
        Assert.Equal(new PushOutcome(PushStatus.Ok, 0), store.PushRange(t, 0, 4, Ones(8), new WorkerStamp(w, 1)));
        Assert.Equal(Ones(6), TestStore.Pull(store, t, keys));
        Assert.Equal(new PushOutcome(PushStatus.Ok, 3), store.Push(t, keys, Ones(6), new WorkerStamp(w, 2)));
        Assert.Equal(Enumerable.Repeat(2f, 6), TestStore.Pull(store, t, keys));
        // An older clock is a duplicate too.
        Assert.Equal(0, store.Push(t, keys, Ones(6), new WorkerStamp(w, 1)).Applied);
        Assert.Equal(2UL, store.ClockMin(t));
    }

    [Fact]
    public void ClocksArePerTableAndPerWorker()
    {
        using ParamStore store = _dir.Open();
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(1)), b = TestStore.Create(store, "b", TestStore.Schema(1));
        uint w1 = store.RegisterWorker("w1", [], 60_000).Id, w2 = store.RegisterWorker("w2", [], 60_000).Id;
        Assert.Equal(1, store.Push(a, [7], [1f], new WorkerStamp(w1, 5)).Applied);
        Assert.Equal(1, store.Push(b, [7], [1f], new WorkerStamp(w1, 5)).Applied);
        Assert.Equal(1, store.Push(a, [7], [1f], new WorkerStamp(w2, 5)).Applied);
        Assert.Equal([2f], TestStore.Pull(store, a, 7));
        Assert.Equal(0UL, store.ClockMin(b));   // w2 never pushed b
        Assert.Equal(5UL, store.ClockMin(a));
    }

    [Fact]
    public void UnclockedPushesAreNeverDeduplicated()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        store.Push(t, [3], [1f]);
        store.Push(t, [3], [1f], new WorkerStamp(w, 0));
        Assert.Equal(1, store.Push(t, [3], [1f], new WorkerStamp(w, 0)).Applied);
        Assert.Equal([3f], TestStore.Pull(store, t, 3));
        Assert.Equal(0UL, store.ClockMin(t));
    }

    [Fact]
    public void PushFromAnUnknownWorkerChangesNothing()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        Assert.Equal(PushStatus.WorkerNotFound, store.Push(t, [3], [1f], new WorkerStamp(42, 1)).Status);
        Assert.Equal(PushStatus.WorkerNotFound, store.Tick(t, new WorkerStamp(42, 1)).Status);
        Assert.Equal([0f], TestStore.Pull(store, t, 3));
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        Assert.True(store.RemoveWorker(w));
        Assert.Equal(PushStatus.WorkerNotFound, store.Push(t, [3], [1f], new WorkerStamp(w, 1)).Status);
        Assert.False(store.RemoveWorker(w));
    }

    [Fact]
    public void TickAdvancesTheClockWithoutRows()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint w = store.RegisterWorker("w", ["t"], 60_000).Id;
        Assert.Equal(new PushOutcome(PushStatus.Ok, 0), store.Tick(t, new WorkerStamp(w, 3)));
        Assert.Equal(3UL, store.ClockMin(t));
        Assert.Equal(0, store.Push(t, [1], [1f], new WorkerStamp(w, 3)).Applied);
        Assert.Equal(0, store.GetStats(t).Rows);
    }

    [Fact]
    public void RangesAtDifferentClocksDecideRowByRow()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        store.Tick(t, new WorkerStamp(w, 4));
        // As after a migration: one range arrived from another node already at clock 9.
        ulong[] keys = [.. Enumerable.Range(0, 64).Select(b => (ulong)b << 12)];
        var ring = new StoreOptions { DataDirectory = "x" }.Ring;
        int moved = ring.RangeOf(t.RingHash, keys[0]);
        WorkerClocks clocks = t._clocks.For(w);
        clocks.Ranges[moved] = 9;
        clocks.Recompute();
        int inMoved = keys.Count(k => ring.RangeOf(t.RingHash, k) == moved);
        Assert.Equal(keys.Length - inMoved, store.Push(t, keys, Ones(keys.Length), new WorkerStamp(w, 6)).Applied);
        float[] values = TestStore.Pull(store, t, keys);
        for (int i = 0; i < keys.Length; i++)
            Assert.Equal(ring.RangeOf(t.RingHash, keys[i]) == moved ? 0f : 1f, values[i]);
        Assert.Equal(6UL, clocks.Min);
        Assert.Equal(9UL, clocks.Max);
    }

    [Fact]
    public async Task ClocksAndWorkersSurviveReopenSoRetriesStayExactlyOnce()
    {
        uint w;
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
            w = store.RegisterWorker("keeper", ["t"], 60_000).Id;
            store.Push(t, [1, 2], [1f, 1f], new WorkerStamp(w, 1));
            store.Push(t, [1, 2], [1f, 1f], new WorkerStamp(w, 2));
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            WorkerState state = Assert.Single(store.ListWorkers());
            Assert.Equal((w, "keeper", true), (state.Id, state.Name, state.Live));
            Assert.Equal(["t"], state.Tables);
            Assert.Equal(2UL, store.ClockMin(t));
            Assert.Equal(0, store.Push(t, [1, 2], [1f, 1f], new WorkerStamp(w, 2)).Applied);
            Assert.Equal(2, store.Push(t, [1, 2], [1f, 1f], new WorkerStamp(w, 3)).Applied);
            Assert.Equal([3f, 3f], TestStore.Pull(store, t, 1, 2));
            Assert.True(store.RegisterWorker("next", [], 60_000).Id > w);   // ids are never reused
        }
    }

    [Fact]
    public async Task ACheckpointTakenDuringPushesHoldsExactlyTheRowsItsClocksDescribe()
    {
        const int workers = 4;
        var recoveredClock = new ulong[workers];
        uint[] ids = new uint[workers];
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(4));
            for (int i = 0; i < workers; i++) ids[i] = store.RegisterWorker($"w{i}", ["t"], 60_000).Id;
            using var stop = new CancellationTokenSource();
            // Each worker adds 1 to its own row and to the shared rows 0…2047 (a batch big enough to be split
            // across cores), once per clock. Dedicated threads: four loops that never yield would otherwise hold
            // the pool's threads on 2 cores and starve the checkpoint's I/O completions.
            Task[] pushers = [.. Enumerable.Range(0, workers).Select(i => Task.Factory.StartNew(() =>
            {
                ulong[] keys = [.. TestStore.Keys(0, 2048), 10_000UL + (ulong)i];
                float[] ones = Ones(keys.Length * 4);
                for (ulong c = 1; !stop.IsCancellationRequested; c++)
                    Assert.Equal(keys.Length, store.Push(t, keys, ones, new WorkerStamp(ids[i], c)).Applied);
            }, TaskCreationOptions.LongRunning))];
            try
            {
                for (int k = 0; k < 3; k++) await store.CheckpointAsync();
            }
            finally
            {
                stop.Cancel();
                await Task.WhenAll(pushers);
            }
            // Dispose without a final checkpoint: the reopen sees the third checkpoint's cut.
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            ulong total = 0;
            for (int i = 0; i < workers; i++)
            {
                recoveredClock[i] = t._clocks.MinOf(ids[i]);
                Assert.Equal(recoveredClock[i], t._clocks.For(ids[i]).Max);
                total += recoveredClock[i];
                Assert.Equal(Enumerable.Repeat((float)recoveredClock[i], 4), TestStore.Pull(store, t, 10_000UL + (ulong)i));
            }
            Assert.True(total > 0, "no push made it into a checkpoint");
            float[] shared = TestStore.Pull(store, t, TestStore.Keys(0, 2048));
            Assert.All(shared, v => Assert.Equal((float)total, v));
        }
    }
}
