using System.Buffers.Binary;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Tests;

/// <summary>
/// What a reopen rebuilds besides rows: row counts, workers and vector clocks, from the cut record's counts and
/// point reads, or (for a checkpoint whose cut record has no counts) from a pass over the log.
/// </summary>
public sealed class RecoveryTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    private static float[] Fill(int n, float value) => Enumerable.Repeat(value, n).ToArray();

    private static long Rows(ParamStore store, string table)
    {
        Assert.True(store.TryGetTable(table, out TableHandle? handle), table);
        return store.GetStats(handle).Rows;
    }

    private static TableHandle Table(ParamStore store, string name)
    {
        Assert.True(store.TryGetTable(name, out TableHandle? handle), name);
        return handle;
    }

    /// <summary>Tables a (102 rows), b (50) and an empty one; w1 pushed a at 3 and b at 4, w2 pushed a at 7.</summary>
    private static (uint W1, uint W2) Fill(ParamStore store)
    {
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(4)), b = TestStore.Create(store, "b", TestStore.Schema(2));
        TestStore.Create(store, "empty", TestStore.Schema(1));
        uint w1 = store.RegisterWorker("w1", ["a", "b"], 60_000).Id, w2 = store.RegisterWorker("w2", ["a"], 60_000).Id;
        Assert.Equal(100, store.PushRange(a, 0, 100, Fill(400, 1f), new WorkerStamp(w1, 3)).Applied);
        Assert.Equal(3, store.Push(a, [5, 1000, 2000], Fill(12, 1f), new WorkerStamp(w2, 7)).Applied);   // 2 new rows
        Assert.Equal(50, store.PushRange(b, 10, 50, Fill(100, 1f), new WorkerStamp(w1, 4)).Applied);
        return (w1, w2);
    }

    /// <summary>The state <see cref="Fill(ParamStore)"/> left, as a reopened store must show it.</summary>
    private static void AssertFilled(ParamStore store, uint w1, uint w2)
    {
        Assert.Equal(102, Rows(store, "a"));
        Assert.Equal(50, Rows(store, "b"));
        Assert.Equal(0, Rows(store, "empty"));
        Assert.Equal([w1, w2], store.ListWorkers().Select(w => w.Id));
        TableHandle a = Table(store, "a"), b = Table(store, "b");
        Assert.Equal(3UL, a._clocks.MinOf(w1));
        Assert.Equal(7UL, a._clocks.MinOf(w2));
        Assert.Equal(4UL, b._clocks.MinOf(w1));
        Assert.Equal(0UL, b._clocks.MinOf(w2));
        // The clocks still make retries exactly-once.
        Assert.Equal(0, store.Push(a, [5], Fill(4, 1f), new WorkerStamp(w1, 3)).Applied);
        Assert.Equal(0, store.Push(a, [5], Fill(4, 1f), new WorkerStamp(w2, 7)).Applied);
        Assert.Equal(Fill(4, 2f), TestStore.Pull(store, a, 5));   // pushed by both workers
        Assert.Equal(Fill(4, 1f), TestStore.Pull(store, a, 6));
    }

    [Fact]
    public async Task RowCountsWorkersAndClocksComeBackFromTheCutRecordWithoutAScan()
    {
        uint w1, w2;
        using (ParamStore store = _dir.Open())
        {
            (w1, w2) = Fill(store);
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.Equal(RecoveredStateSource.CutRecord, store.RecoveredStateSource);
            AssertFilled(store, w1, w2);
        }
    }

    [Fact]
    public async Task CountsAfterReplayAreTheCutCountsPlusTheNewRowsTheLogAdds()
    {
        uint w1, w2, w3;
        using (ParamStore store = _dir.Open())
        {
            (w1, w2) = Fill(store);
            await store.CheckpointAsync();
            // After the cut, only in the log: 50 new rows of a (50 of the 100 keys exist), a new table, a deleted
            // table, a new worker with its clocks.
            TableHandle a = Table(store, "a");
            Assert.Equal(100, store.PushRange(a, 50, 100, Fill(400, 1f), new WorkerStamp(w1, 8)).Applied);
            TableHandle c = TestStore.Create(store, "c", TestStore.Schema(3));
            w3 = store.RegisterWorker("w3", ["c"], 60_000).Id;
            Assert.Equal(7, store.PushRange(c, 0, 7, Fill(21, 1f), new WorkerStamp(w3, 2)).Applied);
            Assert.True(store.DeleteTable("b"));
            Assert.Equal(152, store.GetStats(a).Rows);
        }   // no checkpoint: the reopen replays all of the above
        using (ParamStore store = _dir.Open())
        {
            Assert.Equal(RecoveredStateSource.CutRecord, store.RecoveredStateSource);
            Assert.Equal(152, Rows(store, "a"));
            Assert.Equal(7, Rows(store, "c"));
            Assert.Equal(0, Rows(store, "empty"));
            Assert.False(store.TryGetTable("b", out _));
            Assert.Equal([w1, w2, w3], store.ListWorkers().Select(w => w.Id));
            Assert.Equal(8UL, Table(store, "a")._clocks.MinOf(w1));
            Assert.Equal(7UL, Table(store, "a")._clocks.MinOf(w2));
            Assert.Equal(2UL, Table(store, "c")._clocks.MinOf(w3));
            Assert.Equal(Fill(4, 2f), TestStore.Pull(store, Table(store, "a"), 60));
            Assert.Equal(Fill(4, 1f), TestStore.Pull(store, Table(store, "a"), 149));

            // The counts carried forward agree with a full recount of the same state.
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.Equal(RecoveredStateSource.CutRecord, store.RecoveredStateSource);
            Assert.Equal(152, Rows(store, "a"));
            Assert.Equal(7, Rows(store, "c"));
            store.Format0CutRecordForTests = true;
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.Equal(RecoveredStateSource.Scan, store.RecoveredStateSource);
            Assert.Equal(152, Rows(store, "a"));
            Assert.Equal(7, Rows(store, "c"));
            Assert.Equal(0, Rows(store, "empty"));
        }
    }

    [Fact]
    public async Task AStoreWhoseCutRecordIsTheOldEightByteFormatOpensWithCorrectCountsByScanning()
    {
        uint w1, w2;
        using (ParamStore store = _dir.Open())
        {
            store.Format0CutRecordForTests = true;
            (w1, w2) = Fill(store);
            await store.CheckpointAsync();
            TableHandle b = Table(store, "b");
            Assert.Equal(10, store.PushRange(b, 100, 10, Fill(20, 1f)).Applied);   // replayed on top
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.Equal(RecoveredStateSource.Scan, store.RecoveredStateSource);
            Assert.Equal(60, Rows(store, "b"));
            Assert.Equal(102, Rows(store, "a"));
            // The next checkpoint writes the counts; the open after it needs no scan and finds the same.
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.Equal(RecoveredStateSource.CutRecord, store.RecoveredStateSource);
            Assert.Equal(60, Rows(store, "b"));
            Assert.Equal(102, Rows(store, "a"));
            Assert.Equal(4UL, Table(store, "b")._clocks.MinOf(w1));
            Assert.Equal(7UL, Table(store, "a")._clocks.MinOf(w2));
        }
    }

    [Fact]
    public async Task ATableIdThatOrphanRowsUseIsNeverHandedOutAgainAfterTheCountsAreInTheCutRecord()
    {
        // A checkpoint from before the push gate could hold rows of a table its catalog record does not name (the
        // create missed the checkpoint, a push to it did not). Build that state: rows of table id 1 under a catalog
        // record that says the next id is 1.
        using (ParamStore store = _dir.Open())
        {
            TableHandle a = TestStore.Create(store, "a", TestStore.Schema(2));
            Assert.Equal(1u, a.Id);
            store.PushRange(a, 0, 10, Fill(20, 5f));
            store.UpsertSystemRecordForTests(RowKey.CatalogKey, Catalog.Empty.Serialize());
            store.Format0CutRecordForTests = true;
            await store.CheckpointAsync();
        }
        // The scan sees the orphan rows and raises the next id past them; the catalog record still says 1.
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            Assert.Equal(RecoveredStateSource.Scan, store.RecoveredStateSource);
            Assert.Empty(store.ListTables());
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open(durability: DurabilityMode.Checkpoint))
        {
            Assert.Equal(RecoveredStateSource.CutRecord, store.RecoveredStateSource);
            TableHandle b = TestStore.Create(store, "b", TestStore.Schema(2));
            Assert.Equal(2u, b.Id);
            Assert.Equal(new float[20], TestStore.Pull(store, b, TestStore.Keys(0, 10)));
            Assert.Equal(0, store.GetStats(b).Rows);
        }
    }

    [Fact]
    public async Task SystemRecordsOnTheDiskLogAreReadBackThroughPendingReads()
    {
        const long Memory = 16L << 20;
        const int Rows = 120_000, Dim = 64, Batch = 8192;   // 120,000 × 288 B = 35 MB of records, 2× the memory
        uint w;
        using (ParamStore store = _dir.Open(Memory))
        {
            TableHandle small = TestStore.Create(store, "small", TestStore.Schema(1));
            TableHandle big = TestStore.Create(store, "big", TestStore.Schema(Dim));
            w = store.RegisterWorker("w", ["small"], 60_000).Id;
            store.Push(small, [1, 2, 3], [1f, 1f, 1f], new WorkerStamp(w, 9));
            var values = new float[Batch * Dim];
            for (int first = 0; first < Rows; first += Batch)
            {
                int count = Math.Min(Batch, Rows - first);
                store.PushRange(big, (ulong)first, count, values.AsSpan(0, count * Dim));
            }
            LogStats stats = store.GetLogStats();
            Assert.True(stats.HeadAddress > stats.BeginAddress, "part of the log must be on disk only");
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open(Memory))
        {
            Assert.Equal(RecoveredStateSource.CutRecord, store.RecoveredStateSource);
            Assert.True(store.RecoveryPendingReads > 0, "the catalog, registry and clock records were written first and should be on disk");
            Assert.Equal(Rows, store.GetStats(Table(store, "big")).Rows);
            Assert.Equal(3, store.GetStats(Table(store, "small")).Rows);
            Assert.Equal(9UL, Table(store, "small")._clocks.MinOf(w));
            Assert.Equal([w], store.ListWorkers().Select(x => x.Id));
        }
    }

    [Fact]
    public void TheCutRecordFormatIsStable()
    {
        // Golden bytes: a format that reaches disk only grows.
        byte[] record = new byte[CutRecord.SizeOf(2)];
        CutRecord.Write(record, cut: 0x0102030405060708, nextId: 9, [(3u, 100L), (7u, 5_000_000_000L)]);
        Assert.Equal(
            "0807060504030201" + "01000000" + "09000000" + "02000000" + "00000000"
            + "03000000" + "00000000" + "6400000000000000"
            + "07000000" + "00000000" + "00f2052a01000000",
            Convert.ToHexStringLower(record));

        Assert.True(CutRecord.TryRead(record, out long cut, out CutContentsRecord? contents));
        Assert.Equal(0x0102030405060708, cut);
        Assert.NotNull(contents);
        Assert.Equal(9u, contents.NextId);
        Assert.Equal(100, contents.RowsByTable[3]);
        Assert.Equal(5_000_000_000, contents.RowsByTable[7]);
    }

    public static TheoryData<string, string> UnreadableContents => new()
    {
        { "format 0: the LSN alone", "2a00000000000000" },
        { "an unknown format", "2a00000000000000" + "02000000" + "09000000" + "00000000" + "00000000" },
        { "more tables than bytes", "2a00000000000000" + "01000000" + "09000000" + "02000000" + "00000000" + "03000000" + "00000000" + "6400000000000000" },
        { "a trailing byte", "2a00000000000000" + "01000000" + "09000000" + "00000000" + "00000000" + "ff" },
        { "a negative count", "2a00000000000000" + "01000000" + "09000000" + "01000000" + "00000000" + "03000000" + "00000000" + "ffffffffffffffff" },
        { "a table twice", "2a00000000000000" + "01000000" + "09000000" + "02000000" + "00000000" + "03000000" + "00000000" + "0100000000000000" + "03000000" + "00000000" + "0100000000000000" },
        { "a header cut short", "2a00000000000000" + "01000000" + "0900" },
    };

    [Theory]
    [MemberData(nameof(UnreadableContents))]
    public void ACutRecordWhoseContentsCannotBeReadStillYieldsItsCutAndNoCounts(string what, string hex)
    {
        Assert.True(CutRecord.TryRead(Convert.FromHexString(hex), out long cut, out CutContentsRecord? contents), what);
        Assert.Equal(42, cut);
        Assert.Null(contents);
    }

    [Fact]
    public void ACutRecordShorterThanItsLsnIsNoCut()
    {
        Assert.False(CutRecord.TryRead(new byte[7], out _, out _));
        Span<byte> eight = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(eight, 5);
        Assert.True(CutRecord.TryRead(eight, out long cut, out _));
        Assert.Equal(5, cut);
    }
}
