namespace ParamDb.Storage.Tests;

/// <summary>Tables bigger than the 16 MiB log memory: reads and updates go pending to the on-disk log.</summary>
public sealed class LargerThanMemoryTests : IDisposable
{
    private const long Memory = 16L << 20;
    private const int Dim = 64;          // 288-byte records
    private const int Batch = 8192;

    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Pushed value of element j of row k: small integers, so sums are exact in float.</summary>
    private static float G(ulong k, int j) => (k * 7 + (ulong)j) % 97;

    [Fact]
    public async Task TableLargerThanMemoryReadsBackAfterUpdatesCompactionAndReopen()
    {
        const int rows = 220_000;   // 220,000 × 288 B = 63 MB of records, 4× the memory
        TableSchema schema = TestStore.Schema(Dim, new InitializerSpec { Kind = InitializerSpec.Constant, Value = 1 });
        using (ParamStore store = _dir.Open(Memory))
        {
            TableHandle table = TestStore.Create(store, "big", schema);
            PushAll(store, table, rows, explicitKeys: false);   // new rows: InitialUpdater
            PushAll(store, table, rows, explicitKeys: true);    // rows now on disk: pending RMW, CopyUpdater
            Assert.Equal(rows, store.GetStats(table).Rows);
            AssertAll(store, table, rows, pushes: 2);
            // Never-pushed keys whose hash chains reach the disk: pending reads that end NotFound.
            var missing = new float[1000 * Dim];
            store.PullRange(table, rows, 1000, missing);
            Assert.All(missing, v => Assert.Equal(1f, v));

            LogStats before = store.GetLogStats();
            Assert.True(before.HeadAddress > before.BeginAddress, "part of the log must be on disk only");
            Assert.True(store.CompactLog(force: true));
            LogStats after = store.GetLogStats();
            Assert.True(after.BeginAddress > before.BeginAddress);
            Assert.True(after.LogBytes < before.LogBytes, $"log {before.LogBytes} → {after.LogBytes} bytes");
            Assert.True(after.LogBytes < 2 * after.LiveBytes, $"log {after.LogBytes} bytes, live {after.LiveBytes}");
            AssertAll(store, table, rows, pushes: 2);

            PushAll(store, table, rows, explicitKeys: false);
            await store.CheckpointAsync();
        }
        using (ParamStore store = _dir.Open(Memory))
        {
            Assert.True(store.TryGetTable("big", out TableHandle? table));
            Assert.Equal(rows, store.GetStats(table).Rows);
            AssertAll(store, table, rows, pushes: 3);
        }
    }

    [Fact]
    public async Task CompactionDropsTheRowsOfDeletedTablesAndKeepsTheOthers()
    {
        TableSchema schema = TestStore.Schema(Dim);
        using (ParamStore store = _dir.Open(Memory))
        {
            TableHandle doomed = TestStore.Create(store, "doomed", schema);
            PushAll(store, doomed, 100_000, explicitKeys: false);   // 29 MB
            TableHandle kept = TestStore.Create(store, "kept", schema);
            PushAll(store, kept, 20_000, explicitKeys: false);
            Assert.True(store.DeleteTable("doomed"));

            LogStats before = store.GetLogStats();
            Assert.True(before.LogBytes > 2 * before.LiveBytes);
            await store.CheckpointAsync();   // the rule fires on its own: garbage > live and > 8 MiB
            LogStats after = store.GetLogStats();
            // Compaction stops at the mutable region (the newest 90 % of the 16 MiB memory, 14.4 MiB), so of the 29 MB
            // of doomed rows the ~23 MB below it go.
            Assert.True(after.BeginAddress > before.BeginAddress);
            Assert.True(after.LogBytes < before.LogBytes - 18_000_000, $"log {before.LogBytes} → {after.LogBytes} bytes");
            AssertAll(store, kept, 20_000, pushes: 1);
            string[] checkpoints = Directory.GetDirectories(Path.Combine(_dir.Directory, "checkpoints", "cpr-checkpoints"));
            Assert.Single(checkpoints);
        }
        using (ParamStore store = _dir.Open(Memory))
        {
            Assert.Equal(["kept"], store.ListTables().Select(t => t.Name));
            Assert.True(store.TryGetTable("kept", out TableHandle? kept));
            Assert.Equal(20_000, store.GetStats(kept).Rows);
            TableHandle again = TestStore.Create(store, "doomed", schema);
            Assert.Equal(0, store.GetStats(again).Rows);
            Assert.All(TestStore.Pull(store, again, 0, 99_999), v => Assert.Equal(0f, v));
        }
    }

    private static void PushAll(ParamStore store, TableHandle table, int rows, bool explicitKeys)
    {
        var values = new float[Batch * Dim];
        for (int first = 0; first < rows; first += Batch)
        {
            int count = Math.Min(Batch, rows - first);
            for (int i = 0; i < count; i++)
            for (int j = 0; j < Dim; j++)
                values[i * Dim + j] = G((ulong)(first + i), j);
            if (explicitKeys) store.Push(table, TestStore.Keys((ulong)first, count), values.AsSpan(0, count * Dim));
            else store.PushRange(table, (ulong)first, count, values.AsSpan(0, count * Dim));
        }
    }

    private static void AssertAll(ParamStore store, TableHandle table, int rows, int pushes)
    {
        float init = (float)(table.Schema.Init!.Value ?? 0);
        var values = new float[Batch * Dim];
        for (int first = 0; first < rows; first += Batch)
        {
            int count = Math.Min(Batch, rows - first);
            store.PullRange(table, (ulong)first, count, values.AsSpan(0, count * Dim));
            for (int i = 0; i < count; i++)
            for (int j = 0; j < Dim; j++)
            {
                float expected = init + pushes * G((ulong)(first + i), j);
                if (values[i * Dim + j] != expected)
                    Assert.Fail($"row {first + i}[{j}]: expected {expected}, got {values[i * Dim + j]}");
            }
        }
    }
}
