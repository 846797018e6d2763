namespace ParamDb.Storage.Tests;

public sealed class ConcurrencyTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ConcurrentPushesOfOneToTheSameKeysSumToThreadsTimesPushes()
    {
        const int threads = 4, pushes = 1000, dim = 8;
        ulong[] keys = TestStore.Keys(0, 64);
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(dim));
        var ones = Enumerable.Repeat(1f, keys.Length * dim).ToArray();

        RunTogether(threads, _ =>
        {
            for (int p = 0; p < pushes; p++) store.Push(table, keys, ones);
        });

        Assert.All(TestStore.Pull(store, table, keys), v => Assert.Equal(threads * pushes, v));
        Assert.Equal(keys.Length, store.GetStats(table).Rows);
    }

    /// <summary>
    /// Threads racing to create the same new rows: FASTER 2.6.5 alone sometimes created a row twice, the second
    /// copy hiding the first (a push lost, a row counted twice; about one run in five of this test on a loaded
    /// machine). <see cref="RowLatches"/> makes writers of one hash bucket take turns.
    /// </summary>
    [Fact]
    public void ThreadsCreatingTheSameNewRowsCreateEachOnce()
    {
        const int threads = 4, rows = 100_000, dim = 4, batch = 2048, tables = 3;
        using ParamStore store = _dir.Open(128L << 20);
        var ones = Enumerable.Repeat(1f, batch * dim).ToArray();
        for (int t = 0; t < tables; t++)
        {
            TableHandle table = TestStore.Create(store, $"t{t}", TestStore.Schema(dim));
            // Every thread walks the same batches in the same order, so they meet on rows that do not exist yet.
            RunTogether(threads, _ =>
            {
                for (int first = 0; first < rows; first += batch)
                    store.PushRange(table, (ulong)first, Math.Min(batch, rows - first), ones.AsSpan(0, Math.Min(batch, rows - first) * dim));
            });

            var values = new float[rows * dim];
            store.PullRange(table, 0, rows, values);
            int short1 = 0;
            foreach (float v in values) if (v != threads) short1++;
            Assert.Equal(0, short1);
            Assert.Equal(rows, store.GetStats(table).Rows);
        }
    }

    [Fact]
    public void ConcurrentPushesToRowsOnDiskSumExactly()
    {
        const int threads = 2, rounds = 2, rows = 200_000, dim = 16, batch = 4096;   // 96-byte records: 19 MB > 16 MiB
        using ParamStore store = _dir.Open(16L << 20);
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(dim));
        var ones = Enumerable.Repeat(1f, batch * dim).ToArray();

        RunTogether(threads, thread =>
        {
            for (int r = 0; r < rounds; r++)
            for (int b = 0; b < rows / batch + 1; b++)
            {
                // The two threads walk the batches in opposite orders, so they meet on rows in and out of memory.
                int first = (thread == 0 ? b : rows / batch - b) * batch;
                int count = Math.Min(batch, rows - first);
                store.PushRange(table, (ulong)first, count, ones.AsSpan(0, count * dim));
            }
        });

        var values = new float[rows * dim];
        store.PullRange(table, 0, rows, values);
        Assert.All(values, v => Assert.Equal(threads * rounds, v));
        Assert.Equal(rows, store.GetStats(table).Rows);
    }

    [Fact]
    public void PullsDuringPushesNeverSeeAHalfUpdatedRow()
    {
        const int dim = 1024, pushes = 2000;
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(dim));
        var ones = Enumerable.Repeat(1f, dim).ToArray();
        int torn = 0;

        RunTogether(2, thread =>
        {
            if (thread == 0)
            {
                for (int p = 0; p < pushes; p++) store.Push(table, [9], ones);
                return;
            }
            var row = new float[dim];
            for (int p = 0; p < pushes; p++)
            {
                store.Pull(table, [9], row);
                if (row.AsSpan().IndexOfAnyExcept(row[0]) >= 0) Interlocked.Increment(ref torn);
            }
        });

        Assert.Equal(0, torn);
        Assert.All(TestStore.Pull(store, table, 9), v => Assert.Equal(pushes, v));
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="threads"/> threads released together by a barrier.</summary>
    private static void RunTogether(int threads, Action<int> body)
    {
        using var barrier = new Barrier(threads);
        Task[] tasks = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(() =>
        {
            barrier.SignalAndWait();
            body(t);
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(tasks);
    }
}
