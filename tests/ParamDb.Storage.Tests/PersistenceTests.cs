namespace ParamDb.Storage.Tests;

public sealed class PersistenceTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task ReopenAfterCheckpointKeepsTablesSchemasRowsAndCounts()
    {
        TableSchema sums = TestStore.Schema(8, new InitializerSpec { Kind = InitializerSpec.Normal, Std = 0.1, Seed = 1 });
        TableSchema sgd = TestStore.Schema(3, updater: new UpdaterSpec { Kind = UpdaterSpec.Sgd, Lr = 0.5 });
        ulong[] keys = TestStore.Keys(10, 500);
        float[] before;
        using (ParamStore store = _dir.Open())
        {
            TableHandle a = TestStore.Create(store, "sums", sums), b = TestStore.Create(store, "sgd", sgd);
            store.Push(a, keys, Enumerable.Range(0, keys.Length * 8).Select(i => (float)i).ToArray());
            store.Push(b, [1, 2], [1, 2, 3, 4, 5, 6]);
            before = TestStore.Pull(store, a, keys);
            CheckpointResult checkpoint = await store.CheckpointAsync();
            Assert.NotEqual(Guid.Empty, checkpoint.Token);
            Assert.Equal(checkpoint.CompletedAt, store.LastCheckpoint);
        }

        using (ParamStore store = _dir.Open())
        {
            Assert.NotNull(store.LastCheckpoint);
            Assert.Equal(["sgd", "sums"], store.ListTables().Select(t => t.Name));
            Assert.True(store.TryGetTable("sums", out TableHandle? a));
            Assert.True(store.TryGetTable("sgd", out TableHandle? b));
            Assert.Equal(sums, a.Schema);
            Assert.Equal(sgd, b.Schema);
            Assert.Equal(before, TestStore.Pull(store, a, keys));
            Assert.Equal([-0.5f, -1f, -1.5f, -2f, -2.5f, -3f], TestStore.Pull(store, b, 1, 2));
            Assert.Equal(new TableStats(500, 500 * 8 * sizeof(float)), store.GetStats(a));
            Assert.Equal(2, store.GetStats(b).Rows);
            // Ids are never reused: a new table after the restart gets a fresh one.
            Assert.True(TestStore.Create(store, "new", sgd).Id > Math.Max(a.Id, b.Id));
        }
    }

    [Fact]
    public async Task AdamContinuesFromItsStoredStateAfterReopen()
    {
        TableSchema schema = TestStore.Schema(6, updater: new UpdaterSpec { Kind = UpdaterSpec.Adam, Lr = 0.05 });
        var reference = new ReferenceRow(schema.Updater!, new float[6]);
        var g = new float[6];
        void Step(ParamStore store, TableHandle table, int step)
        {
            for (int j = 0; j < 6; j++) g[j] = ReferenceRow.Gradient(42, step, j);
            store.Push(table, [42], g);
            reference.Push(g);
        }

        using (ParamStore store = _dir.Open())
        {
            TableHandle table = TestStore.Create(store, "adam", schema);
            for (int step = 0; step < 3; step++) Step(store, table, step);
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("adam", out TableHandle? table));
            for (int step = 3; step < 6; step++) Step(store, table, step);
            // With m, v or t lost, step 4 would restart bias correction and land elsewhere.
            ReferenceRow.AssertClose(reference.Values, TestStore.Pull(store, table, 42), "adam after reopen");
        }
    }

    [Fact]
    public async Task DeleteSurvivesReopenAndTheRecreatedTableStartsEmpty()
    {
        var init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = -1 };
        using (ParamStore store = _dir.Open())
        {
            TableHandle old = TestStore.Create(store, "t", TestStore.Schema(2, init));
            store.Push(old, [5], [10, 10]);
            Assert.True(store.DeleteTable("t"));
            TableHandle recreated = TestStore.Create(store, "t", TestStore.Schema(2, init));
            store.Push(recreated, [6], [1, 1]);
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.Equal([-1f, -1f, 0f, 0f], TestStore.Pull(store, t, 5, 6));
            Assert.Equal(1, store.GetStats(t).Rows);
        }
    }

    [Fact]
    public void InCheckpointModeAStoreClosedWithoutACheckpointReopensEmpty()
    {
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            store.Push(TestStore.Create(store, "t", TestStore.Schema(2)), [1], [1, 1]);
        }
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            Assert.Empty(store.ListTables());
            Assert.Null(store.LastCheckpoint);
        }
        Assert.False(Directory.Exists(Path.Combine(_dir.Directory, "wal")));
    }

    [Fact]
    public async Task OnlyTheConfiguredNumberOfCheckpointsIsKept()
    {
        using ParamStore store = _dir.Open(checkpointsToKeep: 2, incremental: false);
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(2));
        var tokens = new List<Guid>();
        for (int i = 0; i < 4; i++)
        {
            store.Push(table, [1], [1, 1]);
            tokens.Add((await store.CheckpointAsync()).Token);
        }
        string[] kept = Directory.GetDirectories(Path.Combine(_dir.Directory, "checkpoints", "cpr-checkpoints")).Select(Path.GetFileName).ToArray()!;
        Assert.Equal(tokens.TakeLast(2).Select(t => t.ToString()).Order(), kept.Order());
    }

    /// <summary>
    /// A checkpoint taken while one thread pushes +1 to keys 0…99 batch after batch holds a prefix of that
    /// thread's operations (CPR): it may split one batch, so key values step down by at most one, once.
    /// </summary>
    [Fact]
    public async Task CheckpointDuringPushesHoldsAConsistentPrefix()
    {
        const int rounds = 300;
        ulong[] keys = TestStore.Keys(0, 100);
        // Checkpoint mode: with a write-ahead log the reopened store would replay every round.
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            TableHandle table = TestStore.Create(store, "t", TestStore.Schema(1));
            var ones = Enumerable.Repeat(1f, 100).ToArray();
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task pushing = Task.Run(() =>
            {
                for (int r = 0; r < rounds; r++)
                {
                    store.Push(table, keys, ones);
                    if (r == rounds / 10) started.SetResult();
                }
            });
            await Task.WhenAny(started.Task, pushing);   // a pusher that failed early ends the wait too
            await store.CheckpointAsync();
            await pushing;
            Assert.All(TestStore.Pull(store, table, keys), v => Assert.Equal(rounds, v));
        }
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            Assert.True(store.TryGetTable("t", out TableHandle? table));
            float[] values = TestStore.Pull(store, table, keys);
            Assert.InRange(values[0], rounds / 10 + 1, rounds);
            for (int i = 1; i < values.Length; i++) Assert.InRange(values[i], values[0] - 1, values[i - 1]);
        }
    }

    /// <summary>
    /// The previous checkpoint holds the first push. With the write-ahead log the second comes back from the log
    /// (kept back to the oldest kept checkpoint's cut); without it, it is lost with the broken checkpoint.
    /// </summary>
    [Theory]
    [InlineData(DurabilityMode.Wal, 2f)]
    [InlineData(DurabilityMode.Checkpoint, 1f)]
    public async Task ABrokenNewestCheckpointFallsBackToThePreviousOne(DurabilityMode durability, float expected)
    {
        Guid newest;
        using (ParamStore store = _dir.Open(durability: durability, incremental: false))
        {
            TableHandle table = TestStore.Create(store, "t", TestStore.Schema(2));
            store.Push(table, [1], [1, 1]);
            await store.CheckpointAsync();
            store.Push(table, [1], [1, 1]);
            newest = (await store.CheckpointAsync()).Token;
        }
        BreakCheckpoint(newest);

        using ParamStore reopened = _dir.Open(durability: durability);
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.Equal([expected, expected], TestStore.Pull(reopened, t, 1));
    }

    [Fact]
    public async Task OpenRefusesToStartWhenNoCheckpointCanBeRecoveredAndNamesTheFile()
    {
        Guid only;
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            store.Push(TestStore.Create(store, "t", TestStore.Schema(2)), [1], [1, 1]);
            only = (await store.CheckpointAsync()).Token;
        }
        BreakCheckpoint(only);
        var refused = Assert.Throws<InvalidDataException>(() => _dir.Open(durability: DurabilityMode.Checkpoint));
        Assert.Contains(Path.Combine(_dir.Directory, "checkpoints", "cpr-checkpoints", only.ToString()), refused.Message);
    }

    [Fact]
    public async Task ADamagedOnlyCheckpointIsRebuiltFromALogThatReachesItsFirstRecord()
    {
        Guid only;
        using (ParamStore store = _dir.Open())
        {
            await store.Push(TestStore.Create(store, "t", TestStore.Schema(2)), [1], [1, 1]).Durable;
            only = (await store.CheckpointAsync()).Token;
            await store.Push(store.ListTables()[0], [1], [1, 1]).Durable;
        }
        BreakCheckpoint(only);
        using ParamStore reopened = _dir.Open();
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.Equal([2f, 2f], TestStore.Pull(reopened, t, 1));
    }

    /// <summary>Truncates every file of a checkpoint to nothing, as a crash in the middle of writing it would.</summary>
    private void BreakCheckpoint(Guid token) => BreakCheckpoint(_dir, token);

    /// <summary>Truncates every file of a checkpoint of <paramref name="store"/>'s directory to nothing.</summary>
    internal static void BreakCheckpoint(TestStore store, Guid token)
    {
        foreach (string folder in new[] { "cpr-checkpoints", "index-checkpoints" })
        foreach (string file in Directory.GetFiles(Path.Combine(store.Directory, "checkpoints", folder, token.ToString())))
            File.WriteAllBytes(file, []);
    }
}
