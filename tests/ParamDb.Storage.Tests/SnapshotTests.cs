using ParamDb.Protocol;
using ParamDb.Storage.Snapshots;

namespace ParamDb.Storage.Tests;

/// <summary>Named snapshots on a real store: what they hold, reading them, restoring them (live and after a crash), deleting and keeping them.</summary>
public sealed class SnapshotTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    private SnapshotLibrary Library(int keep = 0) =>
        new(new StoreOptions { DataDirectory = _dir.Directory, MemoryBytes = TestStore.DefaultMemory }, keep);

    private static float[] Fill(int count, float value)
    {
        var values = new float[count];
        Array.Fill(values, value);
        return values;
    }

    /// <summary>Two tables and a clocked worker; returns the worker's id.</summary>
    private static uint Populate(ParamStore store)
    {
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(4));
        TableHandle b = TestStore.Create(store, "b", TestStore.Schema(2, updater: new UpdaterSpec { Kind = "adagrad", Lr = 0.5 }));
        uint worker = store.RegisterWorker("w", ["a"], 60_000).Id;
        store.Push(a, TestStore.Keys(0, 100), Fill(400, 1f), new WorkerStamp(worker, 1));
        store.Push(a, TestStore.Keys(0, 100), Fill(400, 1f), new WorkerStamp(worker, 2));
        store.Push(b, [7, 9], Fill(4, 1f));
        return worker;
    }

    [Fact]
    public async Task ASnapshotHoldsEveryTableAsOfItsCutWhileTheStoreMovesOn()
    {
        using var library = Library();
        using (ParamStore store = _dir.Open())
        {
            Populate(store);
            float[] bBefore = TestStore.Pull(store, store.TryGetTable("b", out var b) ? b : null!, 7, 9);
            SnapshotInfo info = await library.CreateAsync(store, "s1");

            Assert.Equal("s1", info.Name);
            Assert.Equal(["a", "b"], info.Tables.Select(t => t.Name));
            Assert.Equal([100L, 2L], info.Tables.Select(t => t.Rows));
            Assert.Equal(102, info.Rows);
            Assert.Equal(1, info.Workers);
            Assert.Equal(4, info.Tables[0].Schema.Dim);
            Assert.True(info.Bytes > 0);
            Assert.True(DateTimeOffset.UtcNow - info.CreatedAt < TimeSpan.FromMinutes(1));
            Assert.Equal(info, library.Get("s1"), SameSnapshot);
            Assert.Equal(info, Assert.Single(library.List()), SameSnapshot);

            // The live store moves on; the snapshot does not.
            store.TryGetTable("a", out var a);
            store.Push(a!, TestStore.Keys(0, 200), Fill(800, 5f));
            store.DeleteTable("b");

            using SnapshotReader reader = library.OpenReader("s1");
            Assert.True(reader.Store.TryGetTable("a", out var snapA));
            Assert.Equal(Fill(400, 2f), TestStore.Pull(reader.Store, snapA!, TestStore.Keys(0, 100)));
            Assert.Equal(100, reader.Store.GetStats(snapA!).Rows);
            Assert.True(reader.Store.TryGetTable("b", out var snapB));
            Assert.Equal(bBefore, TestStore.Pull(reader.Store, snapB!, 7, 9));
            Assert.Equal(2UL, reader.Store.ClockMin(snapA!));
        }
    }

    private static readonly IEqualityComparer<SnapshotInfo> SameSnapshot = EqualityComparer<SnapshotInfo>.Create(
        (x, y) => x!.Name == y!.Name && x.CreatedAt == y.CreatedAt && x.Rows == y.Rows && x.Bytes == y.Bytes && x.Workers == y.Workers
            && x.Tables.SequenceEqual(y.Tables));

    [Fact]
    public async Task ARestoreBringsBackRowsTablesClocksAndWorkersAndLaterWritesAreLogged()
    {
        using var library = Library();
        uint worker;
        float[] bAtSnapshot;
        ParamStore store = _dir.Open();
        try
        {
            worker = Populate(store);
            store.TryGetTable("b", out var b);
            bAtSnapshot = TestStore.Pull(store, b!, 7, 9);
            await library.CreateAsync(store, "s1");

            store.TryGetTable("a", out var a);
            store.Push(a!, TestStore.Keys(0, 300), Fill(1200, 3f), new WorkerStamp(worker, 3));
            store.DeleteTable("b");
            TestStore.Create(store, "c", TestStore.Schema(1));
            store.RegisterWorker("later", [], 60_000);
            await store.CheckpointAsync();

            library.StageRestore("s1");
        }
        finally
        {
            store.Dispose();
        }

        using (store = _dir.Open())
        {
            Assert.Equal(["a", "b"], store.ListTables().Select(t => t.Name));
            store.TryGetTable("a", out var a);
            store.TryGetTable("b", out var b);
            Assert.Equal(Fill(400, 2f), TestStore.Pull(store, a!, TestStore.Keys(0, 100)));
            Assert.Equal(Fill(800, 0f), TestStore.Pull(store, a!, TestStore.Keys(100, 200)));   // pushed after the snapshot: back to the initializer
            Assert.Equal(100, store.GetStats(a!).Rows);
            Assert.Equal(bAtSnapshot, TestStore.Pull(store, b!, 7, 9));
            Assert.Equal(["w"], store.ListWorkers().Select(w => w.Name));
            Assert.Equal(2UL, store.ClockMin(a!));
            // The clock is the snapshot's: clock 3 is new again and applies once.
            Assert.Equal(PushStatus.Ok, store.Push(a!, [0], Fill(4, 1f), new WorkerStamp(worker, 3)).Status);
            Assert.Equal(0, store.Push(a!, [0], Fill(4, 1f), new WorkerStamp(worker, 3)).Applied);
            Assert.False(Directory.Exists(Path.Combine(_dir.Directory, "restore")));
            Assert.False(Directory.Exists(Path.Combine(_dir.Directory, "restore-old")));
        }
        // Written after the restore, without a checkpoint: back from the write-ahead log.
        using (store = _dir.Open())
        {
            store.TryGetTable("a", out var a);
            Assert.Equal(Fill(4, 3f), TestStore.Pull(store, a!, 0));
            Assert.Equal(3UL, store.ClockMin(a!));
        }
    }

    /// <summary>Row 1 of table a at [1, 1] in snapshot s1 and [2, 2] in the store, with s1 staged for a restore; the store is closed.</summary>
    private async Task StageRestoreOfAnOlderRowAsync()
    {
        using var library = Library();
        using ParamStore store = _dir.Open();
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(2));
        store.Push(a, [1], [1, 1]);
        await library.CreateAsync(store, "s1");
        store.Push(a, [1], [1, 1]);
        library.StageRestore("s1");
    }

    [Fact]
    public async Task ARestoreInterruptedAfterItsFirstMoveIsFinishedByTheNextOpen()
    {
        await StageRestoreOfAnOlderRowAsync();
        // A crash after the first swap step: the node's checkpoints are aside, the snapshot's in place.
        string root = _dir.Directory;
        Directory.CreateDirectory(Path.Combine(root, "restore-old"));
        Directory.Move(Path.Combine(root, "checkpoints"), Path.Combine(root, "restore-old", "checkpoints"));
        Directory.Move(Path.Combine(root, "restore", "checkpoints"), Path.Combine(root, "checkpoints"));

        using (ParamStore store = _dir.Open())
        {
            store.TryGetTable("a", out var a);
            Assert.Equal(new float[] { 1, 1 }, TestStore.Pull(store, a!, 1));
        }
        Assert.False(Directory.Exists(Path.Combine(root, "restore")));
    }

    [Fact]
    public async Task AStagedCopyWithoutItsReadyMarkerIsDiscardedAndTheNodeKeepsItsData()
    {
        await StageRestoreOfAnOlderRowAsync();
        File.Delete(Path.Combine(_dir.Directory, "restore", "READY"));   // as if the copy had died before its end

        using (ParamStore store = _dir.Open())
        {
            store.TryGetTable("a", out var a);
            Assert.Equal(new float[] { 2, 2 }, TestStore.Pull(store, a!, 1));
        }
        Assert.False(Directory.Exists(Path.Combine(_dir.Directory, "restore")));
    }

    [Fact]
    public async Task ADamagedSnapshotIsRefusedBeforeTheNodesDataIsTouched()
    {
        using var library = Library();
        using ParamStore store = _dir.Open();
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(2));
        store.Push(a, [1], [1, 1]);
        await library.CreateAsync(store, "s1");
        string snapshot = Path.Combine(library.Root, "s1", "checkpoints", "cpr-checkpoints");
        string info = Directory.GetFiles(Directory.GetDirectories(snapshot)[0], "info.dat*")[0];
        byte[] bytes = File.ReadAllBytes(info);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(info, bytes);

        var e = Assert.Throws<InvalidDataException>(() => library.StageRestore("s1"));
        Assert.Contains("info.dat", e.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir.Directory, "restore")));
        Assert.Throws<InvalidDataException>(() => library.OpenReader("s1"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    [InlineData("../../etc")]
    [InlineData("a b")]
    public async Task InvalidNamesAreRefusedWithoutTouchingAPath(string name)
    {
        using var library = Library();
        using ParamStore store = _dir.Open();
        var e = await Assert.ThrowsAsync<SnapshotException>(() => library.CreateAsync(store, name));
        Assert.Equal(SnapshotError.InvalidName, e.Error);
        Assert.Equal(SnapshotError.InvalidName, Assert.Throws<SnapshotException>(() => library.Get(name)).Error);
        Assert.Equal(SnapshotError.InvalidName, Assert.Throws<SnapshotException>(() => library.Delete(name)).Error);
        Assert.Empty(Directory.GetFileSystemEntries(library.Root));
        Assert.False(SnapshotLibrary.IsValidName(new string('a', 129)));
        Assert.True(SnapshotLibrary.IsValidName("model-v1.2_final"));
    }

    [Fact]
    public async Task NamesAreNeverReusedAndUnknownNamesAreNotFound()
    {
        using var library = Library();
        using ParamStore store = _dir.Open();
        await library.CreateAsync(store, "s1");
        Assert.Equal(SnapshotError.Exists, (await Assert.ThrowsAsync<SnapshotException>(() => library.CreateAsync(store, "s1"))).Error);
        Assert.Equal(SnapshotError.NotFound, Assert.Throws<SnapshotException>(() => library.Get("nope")).Error);
        Assert.Equal(SnapshotError.NotFound, Assert.Throws<SnapshotException>(() => library.OpenReader("nope")).Error);
        Assert.Equal(SnapshotError.NotFound, Assert.Throws<SnapshotException>(() => library.StageRestore("nope")).Error);
        Assert.False(library.Delete("nope"));
        Assert.Single(Directory.GetDirectories(library.Root));
    }

    [Fact]
    public async Task ADeleteWhileAReaderIsOpenHidesTheSnapshotAndRemovesItWhenTheReaderCloses()
    {
        using var library = Library();
        using ParamStore store = _dir.Open();
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(2));
        store.Push(a, [1], [1, 1]);
        await library.CreateAsync(store, "s1");
        await library.CreateAsync(store, "s2");

        SnapshotReader reader = library.OpenReader("s1");
        Assert.True(library.Delete("s1"));
        Assert.Equal(["s2"], library.List().Select(s => s.Name));
        Assert.Equal(SnapshotError.NotFound, Assert.Throws<SnapshotException>(() => library.Get("s1")).Error);
        Assert.False(library.Delete("s1"));
        reader.Store.TryGetTable("a", out var snapA);
        Assert.Equal(new float[] { 1, 1 }, TestStore.Pull(reader.Store, snapA!, 1));   // still readable
        // The name stays taken until the reader ends, and the refusal says why.
        var taken = await Assert.ThrowsAsync<SnapshotException>(() => library.CreateAsync(store, "s1"));
        Assert.Equal(SnapshotError.Exists, taken.Error);
        Assert.Contains("still reads it", taken.Message);
        reader.Dispose();
        Assert.False(Directory.Exists(Path.Combine(library.Root, "s1")));
        await library.CreateAsync(store, "s1");   // free again
        Assert.True(library.Delete("s1"));

        Assert.True(library.Delete("s2"));
        Assert.Empty(Directory.GetFileSystemEntries(library.Root));
    }

    [Fact]
    public async Task RetentionKeepsTheNewestN()
    {
        using var library = Library(keep: 2);
        using ParamStore store = _dir.Open();
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(1));
        for (int i = 1; i <= 4; i++)
        {
            store.Push(a, [0], [1]);
            await library.CreateAsync(store, $"s{i}");
        }
        Assert.Equal(["s4", "s3"], library.List().Select(s => s.Name));
        Assert.Equal(["s3", "s4"], Directory.GetDirectories(library.Root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task LeftoversOfAnEarlierProcessGoWhenTheLibraryOpens()
    {
        using (var library = Library())
        using (ParamStore store = _dir.Open())
        {
            await library.CreateAsync(store, "kept");
            await library.CreateAsync(store, "doomed");
        }
        string root = Path.Combine(_dir.Directory, "snapshots");
        Directory.CreateDirectory(Path.Combine(root, ".staging-0123"));
        File.WriteAllBytes(Path.Combine(root, "doomed", "DELETED"), []);

        using var reopened = Library();
        Assert.Equal(["kept"], Directory.GetDirectories(root).Select(Path.GetFileName));
        Assert.Equal(["kept"], reopened.List().Select(s => s.Name));
    }

    /// <summary>
    /// A snapshot of a table larger than memory holds the on-disk log's segments too: damage to any of its files,
    /// at its start, middle or end, is refused before the node's data is touched, for a restore and for a read,
    /// unless it lies where a recovery never reads (past the log the checkpoint stands on): then the restore
    /// brings back every row exactly.
    /// </summary>
    [Theory]
    [InlineData("log", "hlog.log.0", 0.0)]
    [InlineData("log", "hlog.log.0", 0.5)]
    [InlineData("log", "hlog.log.0", 1.0)]
    [InlineData("checkpoints", "snapshot.dat.0", 0.0)]
    [InlineData("checkpoints", "snapshot.dat.0", 0.5)]
    [InlineData("checkpoints", "snapshot.dat.0", 1.0)]
    [InlineData("checkpoints", "ht.dat.0", 0.5)]
    public async Task ADamagedSnapshotOfATableLargerThanMemoryIsRefusedWhereverTheDamageIs(string folder, string file, double at)
    {
        using var library = Library();
        const int rows = 60_000;   // dim 64: ~17 MB of records against 8 MiB of log memory
        using ParamStore store = _dir.Open(memoryBytes: 8L << 20);
        TableHandle t = TestStore.Create(store, "big", TestStore.Schema(64));
        store.Push(t, TestStore.Keys(0, rows), Fill(rows * 64, 1f));
        await library.CreateAsync(store, "s1");
        string damaged = Directory.GetFiles(Path.Combine(library.Root, "s1", folder), file, SearchOption.AllDirectories).Single();
        byte[] bytes = File.ReadAllBytes(damaged);
        int offset = Math.Min(bytes.Length - 16, (int)(bytes.Length * at));
        for (int i = offset; i < offset + 16; i++) bytes[i] ^= 0xFF;
        File.WriteAllBytes(damaged, bytes);

        InvalidDataException? refused = null;
        try
        {
            using SnapshotReader reader = library.OpenReader("s1");
            float[] rowsBack = TestStore.Pull(reader.Store, reader.Store.ListTables()[0], TestStore.Keys(0, rows));
            Assert.All(rowsBack, v => Assert.Equal(1f, v));   // not refused: every row exactly as snapshotted
        }
        catch (InvalidDataException e)
        {
            refused = e;
        }
        if (refused is not null)
        {
            Assert.Contains(file, refused.Message);
            Assert.Throws<InvalidDataException>(() => library.StageRestore("s1"));
            Assert.False(Directory.Exists(Path.Combine(_dir.Directory, "restore")));
        }
        Assert.True(refused is not null || (folder, at) == ("log", 1.0), $"damage to {file} at {at} was neither refused nor harmless by design");
        Assert.All(TestStore.Pull(store, t, TestStore.Keys(0, 100)), v => Assert.Equal(1f, v));
    }

    [Fact]
    public async Task ASnapshotOfATableLargerThanMemoryRestoresEveryRow()
    {
        using var library = Library();
        const int rows = 60_000;   // dim 64: ~17 MB of records against 8 MiB of log memory
        ParamStore store = _dir.Open(memoryBytes: 8L << 20);
        try
        {
            TableHandle t = TestStore.Create(store, "big", TestStore.Schema(64));
            var values = new float[rows * 64];
            for (int i = 0; i < values.Length; i++) values[i] = i / 64;
            store.Push(t, TestStore.Keys(0, rows), values);
            await library.CreateAsync(store, "s1");
            store.Push(t, TestStore.Keys(0, rows), values);
            library.StageRestore("s1");
        }
        finally
        {
            store.Dispose();
        }
        using (store = _dir.Open(memoryBytes: 8L << 20))
        {
            store.TryGetTable("big", out var t);
            Assert.Equal(rows, store.GetStats(t!).Rows);
            float[] back = TestStore.Pull(store, t!, TestStore.Keys(0, rows));
            for (int i = 0; i < back.Length; i += 997) Assert.Equal(i / 64, back[i]);
            Assert.Equal(rows - 1, back[^1]);
        }
    }

    [Fact]
    public async Task ASnapshotFolderCopiedElsewhereOpensAsADataDirectory()
    {
        using var library = Library();
        using (ParamStore store = _dir.Open())
        {
            TableHandle a = TestStore.Create(store, "a", TestStore.Schema(2));
            store.Push(a, [4], [1, 2]);
            await library.CreateAsync(store, "s1");
        }
        using var copy = new TestStore();
        CopyTree(Path.Combine(library.Root, "s1"), copy.Directory);
        using (ParamStore served = copy.Open())
        {
            Assert.True(served.TryGetTable("a", out var a));
            Assert.Equal(new float[] { 1, 2 }, TestStore.Pull(served, a!, 4));
            served.Push(a!, [4], [1, 1]);
        }
        using (ParamStore again = copy.Open())
        {
            again.TryGetTable("a", out var a);
            Assert.Equal(new float[] { 2, 3 }, TestStore.Pull(again, a!, 4));
        }
    }

    private static void CopyTree(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        foreach (string folder in Directory.GetDirectories(source)) CopyTree(folder, Path.Combine(target, Path.GetFileName(folder)));
    }
}

public sealed class SparseCopyTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "paramdb-sparse-" + Guid.NewGuid().ToString("N"));

    public SparseCopyTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Lengths around the 4 KiB block and the 4 MiB copy buffer, with data at the start, inside and at the very end.</summary>
    public static TheoryData<int, int[]> Files() => new()
    {
        { 0, [] },
        { 100, [] },
        { 100, [99] },
        { 4096, [0] },
        { 4096 * 3 + 7, [4096 * 3 + 6] },
        { (4 << 20) + 513, [5, 8191, 8192, (4 << 20) - 1, (4 << 20) + 512] },
        { 9 << 20, [1 << 20, (1 << 20) + 1, (5 << 20) + 4095] },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void ACopyReadsBackTheSameBytesAndStoresOnlyTheNonZeroBlocks(int length, int[] ones)
    {
        var bytes = new byte[length];
        var blocks = new HashSet<int>();
        foreach (int at in ones)
        {
            bytes[at] = 0xA5;
            blocks.Add(at / ParamDb.Storage.Snapshots.SnapshotFiles.SparseBlock);
        }
        string source = Path.Combine(_dir, "source"), target = Path.Combine(_dir, "target");
        File.WriteAllBytes(source, bytes);

        long stored = ParamDb.Storage.Snapshots.SnapshotFiles.CopySparse(source, target);

        Assert.Equal(bytes, File.ReadAllBytes(target));
        long expected = 0;
        foreach (int block in blocks) expected += Math.Min(ParamDb.Storage.Snapshots.SnapshotFiles.SparseBlock, length - block * ParamDb.Storage.Snapshots.SnapshotFiles.SparseBlock);
        Assert.Equal(expected, stored);
    }
}
