namespace ParamDb.Storage.Tests;

/// <summary>
/// Damage to the newest checkpoint, file by file: truncated, a flipped byte, deleted. Every case is caught by the
/// manifest's lengths and checksums (FASTER checks neither), the store falls back to the previous checkpoint and
/// replays the log after it, and serves exactly the acknowledged values.
/// </summary>
public sealed class CheckpointCorruptionTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    public enum Damage { Truncate, FlipByte, Delete }

    public static TheoryData<string, string, Damage> Cases()
    {
        var cases = new TheoryData<string, string, Damage>();
        foreach (Damage damage in Enum.GetValues<Damage>())
        {
            cases.Add("cpr-checkpoints", "info.dat.0", damage);
            cases.Add("cpr-checkpoints", "snapshot.dat.0", damage);
            cases.Add("cpr-checkpoints", "paramdb-manifest.json", damage);
            cases.Add("index-checkpoints", "info.dat.0", damage);
            cases.Add("index-checkpoints", "ht.dat.0", damage);
        }
        return cases;
    }

    /// <summary>Pushes 1 to 64 rows, checkpoints, pushes 1 again, checkpoints: returns the newest checkpoint. Both are full
    /// checkpoints in folders of their own (incremental ones: <see cref="IncrementalCheckpointTests"/>).</summary>
    private async Task<Guid> TwoCheckpointsAsync(DurabilityMode durability)
    {
        using ParamStore store = _dir.Open(durability: durability, incremental: false);
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(4));
        float[] ones = Enumerable.Repeat(1f, 64 * 4).ToArray();
        await store.Push(t, TestStore.Keys(0, 64), ones).Durable;
        await store.CheckpointAsync();
        await store.Push(t, TestStore.Keys(0, 64), ones).Durable;
        return (await store.CheckpointAsync()).Token;
    }

    private string FileOf(Guid token, string folder, string name) => Path.Combine(_dir.Directory, "checkpoints", folder, token.ToString(), name);

    private static void Apply(string path, Damage damage)
    {
        Assert.True(File.Exists(path), $"{path} does not exist: the checkpoint layout changed");
        switch (damage)
        {
            case Damage.Truncate:
                using (var file = new FileStream(path, FileMode.Open)) file.SetLength(file.Length / 2);
                break;
            case Damage.FlipByte:
                byte[] bytes = File.ReadAllBytes(path);
                bytes[bytes.Length / 3] ^= 0x10;
                File.WriteAllBytes(path, bytes);
                break;
            default:
                File.Delete(path);
                break;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ADamagedNewestCheckpointFallsBackAndTheLogRestoresEveryValue(string folder, string file, Damage damage)
    {
        Guid newest = await TwoCheckpointsAsync(DurabilityMode.Wal);
        Apply(FileOf(newest, folder, file), damage);

        using ParamStore reopened = _dir.Open();
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.All(TestStore.Pull(reopened, t, TestStore.Keys(0, 64)), v => Assert.Equal(2f, v));
        Assert.Equal(64, reopened.GetStats(t).Rows);
    }

    [Fact]
    public async Task WithoutTheLogTheFallBackServesThePreviousCheckpointNotDamagedBytes()
    {
        Guid newest = await TwoCheckpointsAsync(DurabilityMode.Checkpoint);
        Apply(FileOf(newest, "cpr-checkpoints", "snapshot.dat.0"), Damage.FlipByte);

        using ParamStore reopened = _dir.Open(durability: DurabilityMode.Checkpoint);
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.All(TestStore.Pull(reopened, t, TestStore.Keys(0, 64)), v => Assert.Equal(1f, v));
    }

    [Fact]
    public async Task ACheckpointWithoutItsManifestNeverCompletedAndIsSkipped()
    {
        Guid newest = await TwoCheckpointsAsync(DurabilityMode.Checkpoint);
        File.Delete(FileOf(newest, "cpr-checkpoints", "paramdb-manifest.json"));

        using ParamStore reopened = _dir.Open(durability: DurabilityMode.Checkpoint);
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.All(TestStore.Pull(reopened, t, TestStore.Keys(0, 64)), v => Assert.Equal(1f, v));
    }

    [Fact]
    public async Task BothCheckpointsDamagedAndTheLogTruncatedRefusesNamingEachFile()
    {
        Guid newest;
        using (ParamStore store = _dir.Open(walSegmentBytes: 1024, incremental: false))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(4));
            float[] ones = Enumerable.Repeat(1f, 64 * 4).ToArray();
            for (int i = 0; i < 3; i++)
            {
                await store.Push(t, TestStore.Keys(0, 64), ones).Durable;
                newest = (await store.CheckpointAsync()).Token;
            }
        }
        Assert.NotEqual(1, ParseFirstLsn(_dir.WalSegments()[0]));   // the log no longer reaches back to record 1
        string[] snapshots = Directory.GetFiles(Path.Combine(_dir.Directory, "checkpoints", "cpr-checkpoints"), "snapshot.dat.0", SearchOption.AllDirectories);
        Assert.Equal(2, snapshots.Length);
        foreach (string snapshot in snapshots) Apply(snapshot, Damage.FlipByte);

        var refused = Assert.Throws<InvalidDataException>(() => _dir.Open(walSegmentBytes: 1024));
        foreach (string snapshot in snapshots) Assert.Contains(snapshot, refused.Message);
        Assert.Contains(_dir.WalDirectory, refused.Message);
    }

    private static long ParseFirstLsn(string segment) => long.Parse(Path.GetFileNameWithoutExtension(segment)["wal-".Length..], System.Globalization.CultureInfo.InvariantCulture);
}
