namespace ParamDb.Storage.Tests;

/// <summary>
/// The write-ahead log under the store: every acknowledged write comes back after a reopen without a
/// checkpoint, each exactly once however checkpoints cut the log, and the log is kept back to the oldest kept
/// checkpoint so a fall back still finds its records.
/// </summary>
public sealed class DurabilityTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    private static float[] Fill(int n, float v) => Enumerable.Repeat(v, n).ToArray();

    [Fact]
    public async Task EveryAcknowledgedWriteComesBackFromTheLogWithoutACheckpoint()
    {
        uint w1, w2;
        using (ParamStore store = _dir.Open())
        {
            TableHandle a = TestStore.Create(store, "a", TestStore.Schema(2));
            TableHandle b = TestStore.Create(store, "b", TestStore.Schema(1));
            TableHandle gone = TestStore.Create(store, "gone", TestStore.Schema(1));
            w1 = store.RegisterWorker("w1", [], 60_000).Id;
            w2 = store.RegisterWorker("w2", ["a"], 60_000).Id;
            await store.Push(a, [1, 1UL << 50], [1, 2, 3, 4]).Durable;
            await store.PushRange(a, 100, 3, Fill(6, 0.5f), new WorkerStamp(w1, 1)).Durable;
            await store.Push(a, [1], [10, 20], new WorkerStamp(w1, 2)).Durable;
            await store.Push(a, [1], [10, 20], new WorkerStamp(w1, 2)).Durable;   // a retry: no effect
            await store.Tick(a, new WorkerStamp(w2, 7)).Durable;
            await store.Push(b, [5], [3], new WorkerStamp(w2, 1)).Durable;
            await store.Push(gone, [5], [3]).Durable;
            Assert.True(store.DeleteTable("gone"));
            Assert.True(store.RemoveWorker(w2));
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.Equal(["a", "b"], store.ListTables().Select(t => t.Name));
            Assert.True(store.TryGetTable("a", out TableHandle? a));
            Assert.True(store.TryGetTable("b", out TableHandle? b));
            Assert.Equal([11f, 22f, 3f, 4f], TestStore.Pull(store, a, 1, 1UL << 50));
            Assert.Equal(Fill(6, 0.5f), TestStore.Pull(store, a, 100, 101, 102));
            Assert.Equal([3f], TestStore.Pull(store, b, 5));
            Assert.Equal(5, store.GetStats(a).Rows);
            Assert.Equal(1, store.GetStats(b).Rows);
            Assert.Equal([w1], store.ListWorkers().Select(w => w.Id));
            Assert.Equal(2UL, store.ClockMin(a));   // w1 at 2; w2 was removed, so its tick no longer counts
            Assert.Equal(0, store.Push(a, [1], [1, 1], new WorkerStamp(w1, 2)).Applied);   // still a duplicate after the reopen
            Assert.Equal(w2 + 1, store.RegisterWorker("w3", [], 60_000).Id);   // ids are never reused
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RecoveryReplaysOnlyWhatFollowsTheCheckpoint(bool clocked)
    {
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
            uint w = store.RegisterWorker("w", [], 60_000).Id;
            for (int i = 1; i <= 10; i++)
            {
                await store.Push(t, [7], [1f], clocked ? new WorkerStamp(w, (ulong)i) : default).Durable;
                if (i == 4) await store.CheckpointAsync();
            }
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.Equal([10f], TestStore.Pull(store, t, 7));
        }
    }

    /// <summary>
    /// One thread adds 1 to 64 keys, round after round, while checkpoints are taken: the cut falls between whole
    /// pushes, so after a reopen every key holds exactly the number of rounds, none replayed twice or lost.
    /// </summary>
    [Fact]
    public async Task PushesDuringCheckpointsLandExactlyOnce()
    {
        const int minRounds = 2000;
        int rounds = 0, checkpoints = 0;
        ulong[] keys = TestStore.Keys(0, 64);
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(2));
            float[] ones = Fill(keys.Length * 2, 1f);
            var pushing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // A dedicated thread: a busy loop on the pool would starve FASTER's checkpoint I/O completions. It pushes
            // until at least two checkpoints have run beside it, however slow the machine makes them.
            var pusher = new Thread(() =>
            {
                try
                {
                    for (; rounds < minRounds || Volatile.Read(ref checkpoints) < 2; rounds++) store.Push(t, keys, ones).Durable.GetAwaiter().GetResult();
                    pushing.SetResult();
                }
                catch (Exception e)
                {
                    pushing.SetException(e);
                }
            });
            pusher.Start();
            while (!pushing.Task.IsCompleted)
            {
                await store.CheckpointAsync();
                Interlocked.Increment(ref checkpoints);
            }
            await pushing.Task;
            Assert.True(checkpoints >= 2, $"only {checkpoints} checkpoints ran during the pushes");
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.All(TestStore.Pull(store, t, keys), v => Assert.Equal(rounds, v));
        }
    }

    /// <summary>
    /// Four threads push +1 to a shared row and to rows of their own, with clocks, while checkpoints run: live and
    /// after a reopen (checkpoint plus log), the shared row holds the sum of every thread's pushes.
    /// </summary>
    [Fact]
    public async Task ConcurrentPushesToOneRowDuringCheckpointsAreAllKept()
    {
        const int threads = 4, rounds = 1500;
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(4));
            var done = new Task[threads];
            for (int n = 0; n < threads; n++)
            {
                uint worker = store.RegisterWorker($"w{n}", [], 600_000).Id;
                ulong[] keys = [0, .. TestStore.Keys(1000UL * (ulong)(n + 1), 8)];
                float[] ones = Fill(keys.Length * 4, 1f);
                var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                done[n] = finished.Task;
                new Thread(() =>
                {
                    try
                    {
                        for (int r = 1; r <= rounds; r++) store.Push(t, keys, ones, new WorkerStamp(worker, (ulong)r)).Durable.GetAwaiter().GetResult();
                        finished.SetResult();
                    }
                    catch (Exception e)
                    {
                        finished.SetException(e);
                    }
                }).Start();
            }
            Task all = Task.WhenAll(done);
            while (!all.IsCompleted) await store.CheckpointAsync();
            await all;
            Assert.All(TestStore.Pull(store, t, 0), v => Assert.Equal(threads * rounds, v));
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.All(TestStore.Pull(store, t, 0), v => Assert.Equal(threads * rounds, v));
            Assert.All(TestStore.Pull(store, t, TestStore.Keys(1000, 8)), v => Assert.Equal(rounds, v));
        }
    }

    [Fact]
    public async Task TheLogIsKeptBackToTheOldestKeptCheckpointSoAFallBackStillFindsIt()
    {
        Guid newest = default;
        int segmentsBefore;
        using (ParamStore store = _dir.Open(checkpointsToKeep: 2, walSegmentBytes: 4096, incremental: false))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(16));
            float[] ones = Fill(16 * 8, 1f);
            ulong[] keys = TestStore.Keys(0, 8);
            for (int round = 0; round < 3; round++)
            {
                for (int i = 0; i < 20; i++) await store.Push(t, keys, ones).Durable;   // ~600 B per record: ~6 per segment
                newest = (await store.CheckpointAsync()).Token;
            }
        }
        segmentsBefore = _dir.WalSegments().Length;   // after Dispose, which waits for the last checkpoint's deletes
        // Three checkpoints of 20 pushes each, two kept: the segments wholly before the second one's cut are gone.
        Assert.InRange(segmentsBefore, 2, 5);
        PersistenceTests.BreakCheckpoint(_dir, newest);
        using ParamStore reopened = _dir.Open(walSegmentBytes: 4096);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.All(TestStore.Pull(reopened, table, TestStore.Keys(0, 8)), v => Assert.Equal(60f, v));
    }

    [Fact]
    public async Task AMissingLogSegmentRefusesToStartAndNamesTheLog()
    {
        using (ParamStore store = _dir.Open(walSegmentBytes: 512))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(16));
            for (int i = 0; i < 20; i++) await store.Push(t, [(ulong)i], Fill(16, 1f)).Durable;
        }
        string[] segments = _dir.WalSegments();
        Assert.True(segments.Length >= 4, $"{segments.Length} segments");
        File.Delete(segments[1]);

        var refused = Assert.Throws<InvalidDataException>(() => _dir.Open(walSegmentBytes: 512));
        Assert.Contains(_dir.WalDirectory, refused.Message);
        Assert.Contains("missing", refused.Message);

        File.Delete(segments[0]);   // now the log starts after records no checkpoint holds
        refused = Assert.Throws<InvalidDataException>(() => _dir.Open(walSegmentBytes: 512));
        Assert.Contains("are missing", refused.Message);
    }

    [Fact]
    public async Task ADamagedRecordBeforeTheEndRefusesToStartAndNamesTheSegment()
    {
        using (ParamStore store = _dir.Open(walSegmentBytes: 512))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(16));
            for (int i = 0; i < 20; i++) await store.Push(t, [(ulong)i], Fill(16, 1f)).Durable;
        }
        string damaged = _dir.WalSegments()[1];
        byte[] bytes = File.ReadAllBytes(damaged);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(damaged, bytes);

        var refused = Assert.Throws<InvalidDataException>(() => _dir.Open(walSegmentBytes: 512));
        Assert.Contains(damaged, refused.Message);
    }

    [Fact]
    public async Task ATableDeletedAndCreatedAgainReplaysIntoTheRightTable()
    {
        using (ParamStore store = _dir.Open())
        {
            TableHandle first = TestStore.Create(store, "t", TestStore.Schema(1));
            await store.Push(first, [1], [1f]).Durable;
            Assert.True(store.DeleteTable("t"));
            TableHandle second = TestStore.Create(store, "t", TestStore.Schema(1, updater: new ParamDb.Protocol.UpdaterSpec { Kind = "sgd", Lr = 0.5 }));
            await store.Push(second, [2], [4f]).Durable;
        }
        using ParamStore reopened = _dir.Open();
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.Equal("sgd", t.Schema.Updater!.Kind);
        Assert.Equal([0f, -2f], TestStore.Pull(reopened, t, 1, 2));
        Assert.Equal(1, reopened.GetStats(t).Rows);
    }

    [Fact]
    public async Task SwitchingModesKeepsEveryWriteAndNumbersTheLogOnwards()
    {
        using (ParamStore store = _dir.Open())
        {
            await store.Push(TestStore.Create(store, "t", TestStore.Schema(1)), [1], [1f]).Durable;
        }
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            // The log was replayed, folded into a checkpoint and removed.
            Assert.NotNull(store.LastCheckpoint);
            Assert.Empty(_dir.WalSegments());
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.Equal([1f], TestStore.Pull(store, t, 1));
            store.Push(t, [1], [1f]);
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.Equal([2f], TestStore.Pull(store, t, 1));
            await store.Push(t, [1], [1f]).Durable;
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.Equal([3f], TestStore.Pull(store, t, 1));
        }
    }

    [Fact]
    public async Task FsyncModeRecoversLikeWalMode()
    {
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Fsync))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
            await store.Push(t, [1], [1f]).Durable;
            await store.CheckpointAsync();
            await store.Push(t, [1], [2f]).Durable;
        }
        using ParamStore reopened = _dir.Open(durability: DurabilityMode.Fsync);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.Equal([3f], TestStore.Pull(reopened, table, 1));
    }

    [Fact]
    public async Task ACheckpointResetsTheLogBytesThatARecoveryWouldReplay()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(64));
        await store.Push(t, TestStore.Keys(0, 100), Fill(6400, 1f)).Durable;
        Assert.InRange(store.WalBytesSinceCheckpoint, 100 * (8 + 256), 100 * (8 + 256) + 1024);
        await store.CheckpointAsync();
        Assert.Equal(0, store.WalBytesSinceCheckpoint);
    }
}
