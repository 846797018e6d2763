namespace ParamDb.Storage.Tests;

/// <summary>
/// A damaged write-ahead-log record with intact records after it is corruption, not a torn tail: the store
/// refuses to open, naming the segment, the offset and what lies beyond, until an operator accepts the loss.
/// </summary>
public sealed class WalDamageTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// 72 keys pushed one push each after a checkpoint, then a crash: what the issue's reproduction did. Returns
    /// the acknowledged value of each key (0 before it was pushed).
    /// </summary>
    private async Task<float[]> PushesAfterACheckpointAsync()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(4));
        await store.Push(t, TestStore.Keys(1000, 8), Enumerable.Repeat(1f, 32).ToArray()).Durable;
        await store.CheckpointAsync();
        var values = new float[72];
        for (int k = 0; k < 72; k++)
        {
            values[k] = k + 1;
            await store.Push(t, [(ulong)k], Enumerable.Repeat(values[k], 4).ToArray()).Durable;
        }
        return values;
    }

    private static void Invert(string file, double at, int bytes)
    {
        byte[] content = File.ReadAllBytes(file);
        int offset = (int)(content.Length * at);
        for (int i = offset; i < offset + bytes; i++) content[i] ^= 0xFF;
        File.WriteAllBytes(file, content);
    }

    [Theory]
    [InlineData(0.50)]
    [InlineData(0.90)]
    [InlineData(0.97)]
    public async Task DamageWithIntactRecordsAfterItRefusesNamingTheSegmentTheOffsetAndWhatFollows(double at)
    {
        await PushesAfterACheckpointAsync();
        string segment = _dir.WalSegments()[^1];
        Invert(segment, at, 4);

        var e = Assert.Throws<InvalidDataException>(() => _dir.Open());

        Assert.Contains(segment, e.Message);
        Assert.Matches(@"at byte \d+: ", e.Message);
        Assert.Matches(@"and \d+ intact records were written after it", e.Message);
        Assert.Contains("paramdb recover --accept-loss", e.Message);
        // Refusing changed nothing: the same open refuses again, and the segment is as it was.
        Assert.Throws<InvalidDataException>(() => _dir.Open());
    }

    [Fact]
    public async Task AcceptingTheLossKeepsWhatPrecedesTheDamageMovesTheRestAsideAndReportsIt()
    {
        float[] acknowledged = await PushesAfterACheckpointAsync();
        string segment = _dir.WalSegments()[^1];
        long length = new FileInfo(segment).Length;
        Invert(segment, 0.5, 4);

        int kept;
        using (ParamStore accepted = ParamStore.Open(new StoreOptions { DataDirectory = _dir.Directory, MemoryBytes = TestStore.DefaultMemory, AcceptWalLoss = true }))
        {
            Assert.NotNull(accepted.AcceptedLoss);
            Assert.Contains("dropped", accepted.AcceptedLoss);
            Assert.True(accepted.TryGetTable("t", out TableHandle? t));
            float[] values = TestStore.Pull(accepted, t!, TestStore.Keys(0, 72));
            // A prefix of the pushes survives whole, the rest reads as never pushed (the initial value 0).
            kept = 0;
            while (kept < 72 && values[kept * 4] == acknowledged[kept]) kept++;
            Assert.InRange(kept, 1, 71);
            for (int k = kept; k < 72; k++) Assert.Equal(0f, values[k * 4]);
            Assert.All(TestStore.Pull(accepted, t!, TestStore.Keys(1000, 8)), v => Assert.Equal(1f, v));   // the checkpoint's rows
        }

        // The damaged bytes were moved aside, not deleted, and the log now opens without the flag.
        string[] aside = Directory.GetFiles(Path.Combine(_dir.Directory, "damaged"), "*", SearchOption.AllDirectories);
        Assert.Equal(length, new FileInfo(segment).Length + new FileInfo(Assert.Single(aside)).Length);
        using ParamStore reopened = _dir.Open();
        Assert.Null(reopened.AcceptedLoss);
        Assert.True(reopened.TryGetTable("t", out TableHandle? again));
        Assert.Equal(acknowledged[kept - 1], TestStore.Pull(reopened, again!, (ulong)(kept - 1))[0]);
        Assert.Equal(0f, TestStore.Pull(reopened, again!, (ulong)kept)[0]);
    }

    [Fact]
    public async Task ATornLastRecordIsDroppedAndEverythingBeforeItServed()
    {
        float[] acknowledged = await PushesAfterACheckpointAsync();
        string segment = _dir.WalSegments()[^1];
        using (var file = new FileStream(segment, FileMode.Open)) file.SetLength(file.Length - 5);   // the last write never finished

        using ParamStore reopened = _dir.Open();
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        float[] values = TestStore.Pull(reopened, t!, TestStore.Keys(0, 72));
        for (int k = 0; k < 71; k++) Assert.Equal(acknowledged[k], values[k * 4]);
        Assert.Equal(0f, values[71 * 4]);
    }
}
