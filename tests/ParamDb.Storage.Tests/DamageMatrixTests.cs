using Xunit.Abstractions;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Every file kind a restart reads, damaged at its start, middle and end after a crash: the restarted store either
/// serves exactly the acknowledged sums or refuses to open with a message. Nothing in between: no mixed versions,
/// no silently missing pushes, no damaged bytes served as values. One exception is the rule itself: damage to the
/// last record of the newest log segment, with nothing intact after it, is a torn tail, the shape a crash during a
/// write leaves; that record is dropped (and logged), as the test checks.
/// </summary>
public sealed class DamageMatrixTests(ITestOutputHelper output) : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    public enum Offset { Start, Middle, End }

    public enum Outcome { Correct, Refused, TornTail }

    /// <summary>The file kinds of a store with a full checkpoint and an increment (in memory), or of one larger than memory.</summary>
    public static TheoryData<string, Offset, bool> Cases()
    {
        var cases = new TheoryData<string, Offset, bool>();
        foreach (Offset offset in Enum.GetValues<Offset>())
        {
            foreach (string kind in (string[])["wal-newest", "wal-oldest", "cpr-info", "snapshot", "delta", "manifest-base", "manifest-increment", "index-info", "index-table"])
                cases.Add(kind, offset, false);
            foreach (string kind in (string[])["hlog", "wal-newest", "snapshot", "manifest-base", "index-table"])
                cases.Add(kind, offset, true);
        }
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task DamageEndsInTheAcknowledgedStateOrARefusal(string kind, Offset offset, bool largerThanMemory)
    {
        (Dictionary<ulong, float> acknowledged, float[] lastPush, ulong[] lastKeys, int dim, long memory) = await CrashAfterCheckpointsAsync(largerThanMemory);
        string file = FileOf(kind);
        long at = Damage(file, offset);

        Outcome outcome;
        try
        {
            using ParamStore reopened = _dir.Open(memoryBytes: memory);
            Assert.True(reopened.TryGetTable("t", out TableHandle? table));
            ulong[] keys = [.. acknowledged.Keys.Order()];
            float[] values = TestStore.Pull(reopened, table!, keys);
            int wrong = 0, tornOnly = 0;
            var lastSet = new HashSet<ulong>(lastKeys);
            for (int i = 0; i < keys.Length; i++)
            {
                float want = acknowledged[keys[i]], got = values[i * dim];
                bool rowExact = true;
                for (int j = 0; j < dim; j++) rowExact &= values[i * dim + j] == want;
                if (rowExact) continue;
                // The torn-tail rule drops exactly the last push: its keys read one push short.
                bool lastShort = lastSet.Contains(keys[i]) && got == want - lastPush[0];
                if (lastShort) tornOnly++;
                else wrong++;
            }
            Assert.True(wrong == 0, $"{kind} at {offset} ({at}): {wrong} rows serve neither the acknowledged sum nor a refusal");
            if (tornOnly > 0)
            {
                Assert.Equal("wal-newest", kind);
                Assert.Equal(Offset.End, offset);
                Assert.Equal(lastKeys.Length, tornOnly);
                outcome = Outcome.TornTail;
            }
            else
            {
                Assert.Equal(acknowledged.Count, reopened.GetStats(table!).Rows);
                outcome = Outcome.Correct;
            }
        }
        catch (InvalidDataException e)
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Message));
            outcome = Outcome.Refused;
            output.WriteLine(e.Message);
        }
        output.WriteLine($"{kind} × {offset} (byte {at} of {Path.GetFileName(file)}), larger than memory: {largerThanMemory} → {outcome}");
    }

    /// <summary>
    /// Rows pushed, a full checkpoint, more pushes, a second checkpoint (an increment when the table fits in
    /// memory), more pushes, then the store is closed without a checkpoint: what a kill -9 leaves, as the
    /// write-ahead log hands every record to the OS before it is acknowledged.
    /// </summary>
    private async Task<(Dictionary<ulong, float> Acknowledged, float[] LastPush, ulong[] LastKeys, int Dim, long Memory)> CrashAfterCheckpointsAsync(bool largerThanMemory)
    {
        // Larger than memory: 60,000 rows of dim 64 (~17 MB of records) against the smallest budget, 8 MiB.
        int rows = largerThanMemory ? 60_000 : 300, dim = largerThanMemory ? 64 : 4;
        long memory = largerThanMemory ? 8L << 20 : TestStore.DefaultMemory;
        var acknowledged = new Dictionary<ulong, float>();
        using ParamStore store = _dir.Open(memoryBytes: memory, walSegmentBytes: largerThanMemory ? 256 << 10 : 4 << 10);
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(dim));

        async Task Push(ulong[] keys, float value)
        {
            await store.Push(t, keys, Enumerable.Repeat(value, keys.Length * dim).ToArray()).Durable;
            foreach (ulong k in keys) acknowledged[k] = acknowledged.GetValueOrDefault(k) + value;
        }

        ulong[] all = TestStore.Keys(0, rows);
        for (int batch = 0; batch < rows; batch += 1000) await Push(all[batch..Math.Min(rows, batch + 1000)], 1);
        await store.CheckpointAsync();
        await Push([.. all.Where(k => k % 3 == 0).Take(2000)], 2);
        await store.CheckpointAsync();
        for (int round = 0; round < 6; round++) await Push([.. all.Where(k => k % 5 == (ulong)round % 5).Take(500)], 4);
        ulong[] last = [.. all.Where(k => k % 7 == 0).Take(40)];
        await Push(last, 8);
        return (acknowledged, Enumerable.Repeat(8f, dim).ToArray(), last, dim, memory);
    }

    /// <summary>The file of a kind in the crashed store: the newest checkpoint's, the log's.</summary>
    private string FileOf(string kind)
    {
        string checkpoints = Path.Combine(_dir.Directory, "checkpoints");
        string newestFolder = new DirectoryInfo(Path.Combine(checkpoints, "cpr-checkpoints")).GetDirectories().OrderByDescending(d => d.LastWriteTimeUtc).First().FullName;
        string token = Path.GetFileName(newestFolder);
        string index = Path.Combine(checkpoints, "index-checkpoints", token);
        string Only(string folder, string pattern) =>
            Directory.GetFiles(folder, pattern).Where(f => !f.EndsWith(".tmp", StringComparison.Ordinal)).OrderBy(f => f, StringComparer.Ordinal).LastOrDefault()
            ?? throw new InvalidOperationException($"no {pattern} in {folder}: the layout changed");
        return kind switch
        {
            "wal-newest" => _dir.WalSegments()[^1],
            "wal-oldest" => _dir.WalSegments()[0],
            "cpr-info" => Only(newestFolder, "info.dat*"),
            "snapshot" => Only(newestFolder, "snapshot.dat*"),
            "delta" => Only(newestFolder, "delta.dat*"),
            "manifest-base" => Path.Combine(newestFolder, "paramdb-manifest.json"),
            "manifest-increment" => Only(newestFolder, "paramdb-manifest.json.v*"),
            "index-info" => Only(index, "info.dat*"),
            "index-table" => Only(index, "ht.dat*"),
            "hlog" => Only(Path.Combine(_dir.Directory, "log"), "hlog.log.*"),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    /// <summary>Inverts 16 bytes at the start, middle or end of the file; returns where.</summary>
    private static long Damage(string file, Offset offset)
    {
        byte[] bytes = File.ReadAllBytes(file);
        Assert.True(bytes.Length >= 16, $"{file} has {bytes.Length} bytes");
        int at = offset switch { Offset.Start => 0, Offset.Middle => bytes.Length / 2, _ => bytes.Length - 16 };
        for (int i = at; i < at + 16; i++) bytes[i] ^= 0xFF;
        File.WriteAllBytes(file, bytes);
        return at;
    }
}
