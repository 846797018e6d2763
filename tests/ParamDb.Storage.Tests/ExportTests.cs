using System.Runtime.InteropServices;
using ParamDb.Protocol.Safetensors;
using ParamDb.Storage.Export;

namespace ParamDb.Storage.Tests;

/// <summary>The key scan and the whole export on a real store: every row once, in key order, with its values.</summary>
public sealed class ExportTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Collects scanned keys, duplicates included.</summary>
    private sealed class Collect : IKeyChunkSink
    {
        public List<ulong> Keys { get; } = [];
        public int Chunks { get; private set; }

        public void Accept(ReadOnlySpan<ulong> keys)
        {
            Keys.AddRange(keys);
            Chunks++;
        }

        public void Exclude(IReadOnlyCollection<ulong> keys) => Keys.RemoveAll(keys.Contains);
    }

    private static void PushOnes(ParamStore store, TableHandle table, ulong[] keys)
    {
        var values = new float[keys.Length * table.Dim];
        Array.Fill(values, 1f);
        store.Push(table, keys, values);
    }

    private static async Task<byte[]> WriteAsync(TableExport export)
    {
        using var file = new MemoryStream();
        await export.WriteToAsync(file);
        return file.ToArray();
    }

    [Fact]
    public void ScanHandsOutEveryRowOfTheTableAndNothingElse()
    {
        using ParamStore store = _dir.Open();
        TableHandle a = TestStore.Create(store, "a", TestStore.Schema(2));
        TableHandle b = TestStore.Create(store, "b", TestStore.Schema(2));
        ulong[] keysA = [0, 5, 1UL << 40, ulong.MaxValue];
        PushOnes(store, a, keysA);
        PushOnes(store, b, TestStore.Keys(0, 20_000));   // same key space, other table
        store.Push(a, [5], [1, 1], new WorkerStamp(store.RegisterWorker("w", [], 60_000).Id, 1));   // a clock record of a

        var sink = new Collect();
        Assert.Equal(4, store.ScanKeys(a, sink));
        ulong[] scanned = [.. sink.Keys];
        Array.Sort(scanned);
        Assert.Equal(keysA, scanned);

        var all = new Collect();
        Assert.Equal(20_000, store.ScanKeys(b, all));
        Assert.Equal(3, all.Chunks);   // 8,192 keys per chunk
        Assert.Equal(20_000, new HashSet<ulong>(all.Keys).Count);
    }

    [Fact]
    public async Task RowsCopiedToTheTailAreScannedTwiceButExportedOnce()
    {
        // 200,000 rows of dim 16 (96-byte records, 19 MB) in 16 MiB of log memory: the second push finds most rows
        // read-only or on disk and copies them to the tail, leaving the old versions in the log.
        const int rows = 200_000;
        using ParamStore store = _dir.Open(16L << 20);
        TableHandle table = TestStore.Create(store, "big", TestStore.Schema(16));
        var random = new Random(42);
        var keySet = new HashSet<ulong>();
        while (keySet.Count < rows) keySet.Add((ulong)random.NextInt64() << 1);
        ulong[] keys = [.. keySet];
        Array.Sort(keys);
        PushOnes(store, table, keys);
        PushOnes(store, table, keys);

        var sink = new Collect();
        long scanned = store.ScanKeys(table, sink);
        // How many rows the second push finds still mutable depends on when FASTER flushed pages: some, not all.
        Assert.True(scanned > rows + rows / 4, $"{scanned} keys scanned for {rows} rows: the copies should be in the log");

        using TableExport export = store.PrepareExport(table, runKeys: 10_000);
        Assert.Equal(rows, export.Rows);
        byte[] file = await WriteAsync(export);
        Assert.Equal(export.Length, file.Length);
        Assert.True(SafetensorsHeader.TryParse(file, file.Length, out SafetensorsHeader? header, out ProtocolError error), error.Detail);
        Assert.Equal(rows, header.Count);
        Assert.Equal(keys, MemoryMarshal.Cast<byte, ulong>(file.AsSpan((int)header.KeysOffset, (int)header.KeysLength)).ToArray());
        float[] values = MemoryMarshal.Cast<byte, float>(file.AsSpan((int)header.ValuesOffset)).ToArray();
        Assert.Equal(rows * 16, values.Length);
        Assert.All(values, v => Assert.Equal(2f, v));   // zeros + 1 + 1
    }

    [Fact]
    public async Task ExportFilesGoAwayWhenTheExportIsDisposedAndLeftoversAtTheFirstExport()
    {
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(3));
        store.Push(table, TestStore.Keys(10, 5000), new float[5000 * 3]);
        string tmp = Path.Combine(_dir.Directory, "tmp");
        string leftover = Path.Combine(tmp, "export-of-a-process-that-died");
        Directory.CreateDirectory(leftover);
        File.WriteAllBytes(Path.Combine(leftover, "run-00000.keys"), new byte[64]);
        string unrelated = Path.Combine(tmp, "not-an-export");
        Directory.CreateDirectory(unrelated);

        using (TableExport export = store.PrepareExport(table, runKeys: 1000))
        {
            Assert.False(Directory.Exists(leftover));
            Assert.True(Directory.Exists(unrelated));
            Assert.Single(Directory.GetDirectories(tmp, "export-*"));   // its own: 5 runs merged into one file
            byte[] file = await WriteAsync(export);
            Assert.Equal(export.Length, file.Length);
            Assert.Equal(TestStore.Keys(10, 5000), MemoryMarshal.Cast<byte, ulong>(file.AsSpan((int)export.Header.KeysOffset, 5000 * 8)).ToArray());
        }
        Assert.Empty(Directory.GetDirectories(tmp, "export-*"));
    }

    [Fact]
    public void AnExportCancelledDuringItsScanLeavesNoFiles()
    {
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(1));
        store.Push(table, TestStore.Keys(0, 50_000), new float[50_000]);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => store.PrepareExport(table, runKeys: 1000, cancelled.Token));
        string tmp = Path.Combine(_dir.Directory, "tmp");
        Assert.True(!Directory.Exists(tmp) || Directory.GetDirectories(tmp).Length == 0);
    }

    [Fact]
    public async Task AnEmptyTableExportsAFileOfNoRows()
    {
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "empty", TestStore.Schema(4));
        using TableExport export = store.PrepareExport(table);
        byte[] file = await WriteAsync(export);
        Assert.True(SafetensorsHeader.TryParse(file, file.Length, out SafetensorsHeader? header, out ProtocolError error), error.Detail);
        Assert.Equal(0, header.Count);
        Assert.Equal(4, header.Dim);
        Assert.Equal(header.PrefixLength, file.Length);
    }
}
