namespace ParamDb.Storage.Tests;

/// <summary>
/// Rounds of pushes, checkpoints and crashes on a table larger than memory, each reopened from its newest
/// checkpoint with every acknowledged value. It found two things: increments on such a table lost the first rows
/// pushed after their full checkpoint (durability.md, incremental checkpoints), and the hybrid log's checksums
/// must vouch only for bytes FASTER never rewrites, or an undamaged store would look damaged after a recovery.
/// </summary>
public sealed class LargerThanMemoryCrashTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task CrashRoundsOfATableLargerThanMemoryKeepEveryPushAndNeverLookLikeDamage()
    {
        const int rows = 60_000, dim = 64;   // ~17 MB of records against 8 MiB of log memory
        var acknowledged = new float[rows];
        var random = new Random(7);
        for (int round = 0; round < 4; round++)
        {
            using ParamStore store = _dir.Open(memoryBytes: 8L << 20);
            if (round > 0) Assert.Equal(0, store.DamagedCheckpointsAtOpen);
            TableHandle t = store.TryGetTable("t", out TableHandle? existing) ? existing! : TestStore.Create(store, "t", TestStore.Schema(dim));
            float[] back = TestStore.Pull(store, t, TestStore.Keys(0, rows));
            for (int k = 0; k < rows; k += 101) Assert.Equal(acknowledged[k], back[k * dim]);
            for (int phase = 0; phase < 3; phase++)
            {
                int first = random.Next(0, rows - 20_000);
                await store.PushRange(t, (ulong)first, 20_000, Enumerable.Repeat(1f, 20_000 * dim).ToArray()).Durable;
                for (int k = first; k < first + 20_000; k++) acknowledged[k] += 1;
                if (phase < 2) await store.CheckpointAsync();
            }
        }
        using ParamStore last = _dir.Open(memoryBytes: 8L << 20);
        Assert.Equal(0, last.DamagedCheckpointsAtOpen);
        Assert.True(last.TryGetTable("t", out TableHandle? table));
        float[] values = TestStore.Pull(last, table!, TestStore.Keys(0, rows));
        for (int k = 0; k < rows; k++) Assert.Equal(acknowledged[k], values[k * dim]);
    }

    /// <summary>
    /// The increment rules and the log's checksums read FASTER's flushed address by reflection; should the names
    /// ever stop resolving, they would quietly fall back to the head: this says so loudly instead.
    /// </summary>
    [Fact]
    public void FastersFlushedAddressIsReadNotGuessed() => Assert.True(ParamStore.ReadsFlushedAddress);
}
