using System.Diagnostics;
using FASTER.core;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Incremental checkpoints: after a full checkpoint, FASTER appends only the changed rows to the full checkpoint's
/// delta log, and each version gets its own manifest. Recovery stops at the newest version that checks out.
/// </summary>
public sealed class IncrementalCheckpointTests : IDisposable
{
    private const int Rows = 20_000, Dim = 64;
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task AnIncrementWritesTheChangedRowsNotTheTable()
    {
        Guid folder;
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            TableHandle t = Fill(store);
            folder = (await store.CheckpointAsync()).Token;
            for (int round = 1; round <= 3; round++)
            {
                store.Push(t, TestStore.Keys(0, 100), Ones(100));
                Assert.Equal(folder, (await store.CheckpointAsync()).Token);
            }
        }
        long snapshot = new FileInfo(CheckpointFile(folder, "snapshot.dat.0")).Length;
        long delta = new FileInfo(CheckpointFile(folder, "delta.dat.0")).Length;
        // 3 × 100 changed rows of ~280 bytes against 20,000 rows: well under a tenth of the base.
        Assert.InRange(delta, 1, snapshot / 10);
        Assert.Equal(4, ManifestsOf(folder).Length);

        // Checkpoint mode has no write-ahead log: the values come from the newest increment alone.
        using ParamStore reopened = _dir.Open(durability: DurabilityMode.Checkpoint);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.All(TestStore.Pull(reopened, table!, TestStore.Keys(0, 100)), v => Assert.Equal(4f, v));
        Assert.All(TestStore.Pull(reopened, table!, TestStore.Keys(100, 100)), v => Assert.Equal(1f, v));
        Assert.Equal(Rows, reopened.GetStats(table!).Rows);
    }

    /// <summary>
    /// A full checkpoint writes the hash index too, while pushes wait: a table much smaller than the index (here
    /// 500 rows, ~140 KB, against a 2 MiB index) whose every row changes between checkpoints stays on increments;
    /// measured against the snapshot alone, every other checkpoint was full.
    /// </summary>
    [Fact]
    public async Task ASmallTablesIncrementsCountTheIndexInTheFullCheckpointsCost()
    {
        const int rows = 500;
        using ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint);
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(Dim));
        store.PushRange(t, 0, rows, Ones(rows));
        Guid folder = (await store.CheckpointAsync()).Token;
        for (int round = 1; round <= 4; round++)
        {
            store.PushRange(t, 0, rows, Ones(rows));
            Assert.Equal(folder, (await store.CheckpointAsync()).Token);
        }
        long snapshot = new FileInfo(CheckpointFile(folder, "snapshot.dat.0")).Length;
        long index = Directory.GetFiles(IndexFolder(folder)).Sum(f => new FileInfo(f).Length);
        long delta = new FileInfo(CheckpointFile(folder, "delta.dat.0")).Length;
        Assert.True(delta > snapshot / 2, $"the increments ({delta} bytes) outgrew half the snapshot ({snapshot} bytes)");
        Assert.True(delta <= (snapshot + index) / 2, $"the increments ({delta} bytes) stayed within half the snapshot and index ({snapshot + index} bytes)");
    }

    /// <summary>Once the increments add up to half of what the full checkpoint wrote (snapshot and index), the next one is full.</summary>
    [Fact]
    public async Task IncrementsAsLargeAsHalfTheFullCheckpointMakeTheNextOneFull()
    {
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            TableHandle t = Fill(store);   // ~5.6 MB of rows against a 2 MiB index
            Guid folder = (await store.CheckpointAsync()).Token;
            store.PushRange(t, 0, Rows, Ones(Rows));
            Assert.Equal(folder, (await store.CheckpointAsync()).Token);   // an increment of every row
            store.PushRange(t, 0, Rows, Ones(Rows));
            Assert.NotEqual(folder, (await store.CheckpointAsync()).Token);   // full again, in a folder of its own
        }
        using ParamStore reopened = _dir.Open(durability: DurabilityMode.Checkpoint);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.All(TestStore.Pull(reopened, table!, TestStore.Keys(0, Rows)), v => Assert.Equal(3f, v));
    }

    /// <summary>
    /// Pushes that land while a full checkpoint's snapshot is being written are in the next increment. FASTER
    /// clears the dirty bits of a snapshot page's records when the page's write completes, after it copied the
    /// page: a row the new version created inside the snapshot and updated in place between the copy and the
    /// completion would be missing from the increment, and a recovery to it would lose those pushes (the log
    /// replays only what came after the increment's cut). Here the completions come 1 s after their writes, as
    /// behind a busy thread pool, and the pushes stop long before that.
    /// </summary>
    [Fact]
    public async Task PushesDuringAFullCheckpointsWritesAreInTheNextIncrement()
    {
        const int rows = 256;
        ulong[] keys = TestStore.Keys(0, rows);
        float[] ones = Ones(rows);
        int pushes = 0;
        using (ParamStore store = ParamStore.Open(SlowCompletions))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(Dim));
            store.Push(t, keys, ones);
            pushes++;
            Task<CheckpointResult> full = store.CheckpointAsync();   // the first after an open is full
            // Push on until 100 ms after FASTER issued the snapshot's writes (WAIT_FLUSH): the pages are copied by
            // then, and their completions are still ~0.9 s away.
            var deadline = Stopwatch.StartNew();
            Stopwatch? sinceWrites = null;
            while (sinceWrites is not { ElapsedMilliseconds: >= 100 })
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the checkpoint never reached its snapshot writes");
                Assert.False(full.IsCompleted, "the checkpoint completed before the pushes could overlap its writes");
                store.Push(t, keys, ones);
                pushes++;
                if (sinceWrites is null && store.CheckpointPhase is Phase.WAIT_FLUSH) sinceWrites = Stopwatch.StartNew();
            }
            Guid folder = (await full).Token;
            Assert.Equal(folder, (await store.CheckpointAsync()).Token);   // an increment of that full checkpoint
        }

        using ParamStore reopened = ParamStore.Open(SlowCompletions);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        float[] values = TestStore.Pull(reopened, table!, keys);
        for (int i = 0; i < values.Length; i++)
            Assert.True(values[i] == pushes, $"row {keys[i / Dim]} holds {values[i]} after {pushes} pushes");
    }

    /// <summary>
    /// New rows created while a full checkpoint's writes are in flight land on the page it writes last, whose dirty
    /// bits FASTER clears when the write completes (a second later here): the increment after it still holds them,
    /// and a crash after that increment loses none of them.
    /// </summary>
    [Fact]
    public async Task RowsCreatedWhileAFullCheckpointIsWrittenSurviveTheNextCheckpointAndACrash()
    {
        var pushed = new List<ulong>();
        using (ParamStore store = ParamStore.Open(SlowCompletions))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(Dim));
            store.PushRange(t, 0, 256, Ones(256));
            Task<CheckpointResult> full = store.CheckpointAsync();
            var deadline = Stopwatch.StartNew();
            Stopwatch? sinceWrites = null;
            ulong next = 1_000;
            while (sinceWrites is not { ElapsedMilliseconds: >= 200 })
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the checkpoint never reached its snapshot writes");
                Assert.False(full.IsCompleted, "the checkpoint completed before the pushes could overlap its writes");
                ulong[] keys = TestStore.Keys(next, 8);   // rows that do not exist yet: appended at the log's tail
                store.Push(t, keys, Ones(8));
                if (sinceWrites is not null) pushed.AddRange(keys);
                next += 8;
                if (sinceWrites is null && store.CheckpointPhase is Phase.WAIT_FLUSH) sinceWrites = Stopwatch.StartNew();
            }
            Guid folder = (await full).Token;
            Assert.Equal(folder, (await store.CheckpointAsync()).Token);   // an increment of that full checkpoint
        }

        using ParamStore reopened = ParamStore.Open(SlowCompletions);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.NotEmpty(pushed);
        float[] values = TestStore.Pull(reopened, table!, [.. pushed]);
        int missing = 0;
        foreach (float v in values) if (v != 1f) missing++;
        Assert.True(missing == 0, $"{missing / Dim} of {pushed.Count} rows created during the full checkpoint's writes are missing");
    }

    /// <summary>
    /// What request handlers await before a push: while a full checkpoint keeps pushes out it is pending, and it
    /// completes once FASTER has fixed the snapshot's end (its writes issued), not before.
    /// </summary>
    [Fact]
    public async Task TheAsyncPushGateOpensOnceAFullCheckpointsSnapshotEndIsFixed()
    {
        using ParamStore store = ParamStore.Open(new StoreOptions
        {
            DataDirectory = _dir.Directory,
            MemoryBytes = TestStore.DefaultMemory,
            CheckpointWriteCompletionDelay = TimeSpan.FromSeconds(1),   // the index write alone holds the gate ≥ 1 s
        });
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(Dim));
        store.Push(t, TestStore.Keys(0, 100), Ones(100));
        Assert.True(store.WhenPushGateOpenAsync().IsCompleted);
        // Another thread: CheckpointAsync holds the gate before it returns its task.
        Task<CheckpointResult> full = Task.Run(() => store.CheckpointAsync());
        var deadline = Stopwatch.StartNew();
        ValueTask open;
        while ((open = store.WhenPushGateOpenAsync()).IsCompleted)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the checkpoint never shut the push gate");
            Assert.False(full.IsCompleted, "the checkpoint completed without the gate being seen shut");
            Thread.Yield();
        }
        await open.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(store.CheckpointPhase is Phase.WAIT_FLUSH or Phase.PERSISTENCE_CALLBACK or Phase.REST, $"the gate opened in {store.CheckpointPhase}");
        store.Push(t, TestStore.Keys(0, 100), Ones(100));
        await full.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(TestStore.Pull(store, t, TestStore.Keys(0, 100)), v => Assert.Equal(2f, v));
    }

    /// <summary>
    /// A byte flipped in the newest increment's part of the delta log: recovery takes the version before it, and
    /// never the damaged one (without the log, the values are exactly that version's).
    /// </summary>
    [Theory]
    [InlineData(DurabilityMode.Wal, 4f)]   // version 2 plus the log: every push
    [InlineData(DurabilityMode.Checkpoint, 2f)]
    public async Task ADamagedIncrementFallsBackToTheVersionBeforeIt(DurabilityMode durability, float expected)
    {
        Guid folder = await ThreeVersionsAsync(durability);
        string delta = CheckpointFile(folder, "delta.dat.0");
        byte[] bytes = File.ReadAllBytes(delta);
        bytes[^200] ^= 0x10;   // the last increment's records and metadata sit at the end of the delta log
        File.WriteAllBytes(delta, bytes);

        using ParamStore reopened = _dir.Open(durability: durability);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.All(TestStore.Pull(reopened, table!, TestStore.Keys(0, 100)), v => Assert.Equal(expected, v));
    }

    /// <summary>FASTER committed the increment but the process died before its manifest: it is not used.</summary>
    [Fact]
    public async Task AnIncrementWithoutItsManifestIsSkipped()
    {
        Guid folder = await ThreeVersionsAsync(DurabilityMode.Checkpoint);
        string[] manifests = ManifestsOf(folder);
        File.Delete(manifests.Where(m => m.Contains(".v", StringComparison.Ordinal)).OrderBy(m => long.Parse(m[(m.LastIndexOf('v') + 1)..])).Last());

        using ParamStore reopened = _dir.Open(durability: DurabilityMode.Checkpoint);
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.All(TestStore.Pull(reopened, table!, TestStore.Keys(0, 100)), v => Assert.Equal(2f, v));
    }

    /// <summary>
    /// Every increment shares its folder's full checkpoint, so the newest version of the folder before is kept
    /// too, with the log back to its cut: a damaged base falls back there.
    /// </summary>
    [Fact]
    public async Task ADamagedBaseFallsBackToThePreviousFolder()
    {
        Guid first, second;
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = Fill(store);
            first = (await store.CheckpointAsync()).Token;
            await store.PushRange(t, 0, Rows, Ones(Rows)).Durable;       // every row changes: the increment is as big as the base
            Assert.Equal(first, (await store.CheckpointAsync()).Token);
            await store.Push(t, TestStore.Keys(0, 100), Ones(100)).Durable;
            second = (await store.CheckpointAsync()).Token;              // so this one is full again, in a new folder
            Assert.NotEqual(first, second);
            await store.Push(t, TestStore.Keys(0, 100), Ones(100)).Durable;
            Assert.Equal(second, (await store.CheckpointAsync()).Token);
            await store.Push(t, TestStore.Keys(0, 100), Ones(100)).Durable;
        }
        Assert.True(Directory.Exists(Path.GetDirectoryName(CheckpointFile(first, "x"))), "the previous folder was purged");
        byte[] snapshot = File.ReadAllBytes(CheckpointFile(second, "snapshot.dat.0"));
        snapshot[snapshot.Length / 3] ^= 0x10;
        File.WriteAllBytes(CheckpointFile(second, "snapshot.dat.0"), snapshot);

        using ParamStore reopened = _dir.Open();
        Assert.True(reopened.TryGetTable("t", out TableHandle? table));
        Assert.All(TestStore.Pull(reopened, table!, TestStore.Keys(0, 100)), v => Assert.Equal(5f, v));
        Assert.All(TestStore.Pull(reopened, table!, TestStore.Keys(100, 100)), v => Assert.Equal(2f, v));
    }

    /// <summary>
    /// The store with each checkpoint write's completion held back a second: pushes made after FASTER copied a page
    /// land before it clears the page's dirty bits. 256 MiB of log memory, so the rows pushed meanwhile (tens of
    /// MiB in a second) never make FASTER flush, which would rule the increment out.
    /// </summary>
    private StoreOptions SlowCompletions => new()
    {
        DataDirectory = _dir.Directory,
        MemoryBytes = 256L << 20,
        CheckpointWriteCompletionDelay = TimeSpan.FromSeconds(1),
    };

    /// <summary>Rows 0…99 hold 1, 2, 3 at the full checkpoint and two increments; a push of 1 follows the last.</summary>
    private async Task<Guid> ThreeVersionsAsync(DurabilityMode durability)
    {
        using ParamStore store = _dir.Open(durability: durability);
        TableHandle t = Fill(store);
        Guid folder = (await store.CheckpointAsync()).Token;
        for (int round = 0; round < 2; round++)
        {
            await store.Push(t, TestStore.Keys(0, 100), Ones(100)).Durable;
            Assert.Equal(folder, (await store.CheckpointAsync()).Token);
        }
        await store.Push(t, TestStore.Keys(0, 100), Ones(100)).Durable;   // after the last increment: only the log has it
        return folder;
    }

    private static TableHandle Fill(ParamStore store)
    {
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(Dim));
        store.PushRange(t, 0, Rows, Ones(Rows));
        return t;
    }

    private static float[] Ones(int rows) => Enumerable.Repeat(1f, rows * Dim).ToArray();

    private string CheckpointFile(Guid folder, string name) => Path.Combine(_dir.Directory, "checkpoints", "cpr-checkpoints", folder.ToString(), name);

    private string IndexFolder(Guid folder) => Path.Combine(_dir.Directory, "checkpoints", "index-checkpoints", folder.ToString());

    private string[] ManifestsOf(Guid folder) =>
        Directory.GetFiles(Path.GetDirectoryName(CheckpointFile(folder, "x"))!, "paramdb-manifest.json*").Where(f => !f.EndsWith(".tmp", StringComparison.Ordinal)).ToArray();
}
