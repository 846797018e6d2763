using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Checksums of what was written instead of what is read back: CRC-32C combination, the per-file ledger (pieces
/// that tile the file, replaced, overlapping, missing), and whole checkpoints whose manifests came from it while
/// pushes ran.
/// </summary>
public sealed class WrittenChecksumsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "paramdb-written-tests", Guid.NewGuid().ToString("N"));
    private readonly TestStore _dir = new();

    public WrittenChecksumsTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        Directory.Delete(_directory, recursive: true);
        _dir.Dispose();
    }

    private static uint Crc(ReadOnlySpan<byte> bytes) => ~Crc32C.Append(~0u, bytes);

    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        return bytes;
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(0, 9)]
    [InlineData(7, 0)]
    [InlineData(1, 1)]
    [InlineData(4096, 12345)]
    [InlineData(100_000, 3)]
    public void CombiningTheChecksumsOfTwoPartsGivesTheChecksumOfTheWhole(int first, int second)
    {
        byte[] bytes = Pattern(first + second);
        uint whole = Crc(bytes);
        Assert.Equal(whole, Crc32C.Combine(Crc(bytes.AsSpan(0, first)), Crc(bytes.AsSpan(first)), second));
        Assert.NotEqual(whole ^ 1, Crc32C.Combine(Crc(bytes.AsSpan(0, first)), Crc(bytes.AsSpan(first)), second));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    [InlineData(64 << 10)]              // the first length split into three chains
    [InlineData((64 << 10) + 8 * 3 - 1)]
    [InlineData((4 << 20) + 5)]
    public void LongInputsSplitIntoChainsGiveTheChecksumOfTheBytesOneByOne(int length)
    {
        byte[] bytes = Pattern(length);
        uint reference = 0x12345678;   // any register to continue from, not only the initial one
        foreach (byte b in bytes) reference = System.Numerics.BitOperations.Crc32C(reference, b);
        Assert.Equal(reference, Crc32C.Append(0x12345678, bytes));
        Assert.Equal(~Crc32C.Append(~0u, bytes), Crc(bytes));
        // The check value of the standard test vector.
        Assert.Equal(0xE3069283u, Crc("123456789"u8));
    }

    [Fact]
    public void PiecesThatTileTheFileInAnyOrderVouchForItAndAGapOrAPartialOverlapDoesNot()
    {
        byte[] bytes = Pattern(10_000);
        string path = Path.Combine(_directory, "f");
        File.WriteAllBytes(path, bytes);
        var written = new WrittenChecksums();
        foreach ((int offset, int count) in new[] { (4000, 6000), (0, 1000), (1000, 3000) })
            written.Record(path, offset, count, Crc(bytes.AsSpan(offset, count)));
        Assert.True(written.TryGet(path, out uint crc, out long length));
        Assert.Equal((Crc(bytes), 10_000L), (crc, length));

        // A write covering earlier pieces whole replaces them.
        written.Record(path, 0, 4000, Crc(bytes.AsSpan(0, 4000)));
        Assert.True(written.TryGet(path, out crc, out _));
        Assert.Equal(Crc(bytes), crc);

        // The file grew past the pieces: not vouched for, and Of reads it.
        File.AppendAllText(path, "more");
        Assert.False(written.TryGet(path, out _, out _));
        Assert.Equal(Crc32C.OfFile(path), written.Of(path));

        // A write overlapping a piece in part leaves the file unknown for good, even once the rest is written.
        string other = Path.Combine(_directory, "g");
        File.WriteAllBytes(other, bytes);
        written.Record(other, 0, 6000, Crc(bytes.AsSpan(0, 6000)));
        written.Record(other, 5000, 5000, Crc(bytes.AsSpan(5000, 5000)));
        written.Record(other, 6000, 4000, Crc(bytes.AsSpan(6000, 4000)));
        Assert.False(written.TryGet(other, out _, out _));
        Assert.Equal((Crc(bytes), 10_000L), written.Of(other));

        // A gap.
        string gapped = Path.Combine(_directory, "h");
        File.WriteAllBytes(gapped, bytes);
        written.Record(gapped, 0, 5000, Crc(bytes.AsSpan(0, 5000)));
        written.Record(gapped, 5512, 4488, Crc(bytes.AsSpan(5512)));
        Assert.False(written.TryGet(gapped, out _, out _));

        int vouched = written.Vouched;
        written.Forget(_directory);   // a folder forgets every file below it
        Assert.False(written.TryGet(path, out _, out _));
        Assert.Equal(vouched, written.Vouched);
    }

    [Fact]
    public async Task ManifestsTakenFromWritesWhilePushesRanMatchTheFilesOnDisk()
    {
        const int rows = 20_000, dim = 64;
        var tokens = new HashSet<Guid>();
        // 256 MiB of log memory: the pushes below grow the log by tens of MiB, and an increment is taken only while
        // FASTER has flushed nothing since its full checkpoint (durability.md), which 32 MiB did not always keep.
        using (ParamStore store = _dir.Open(memoryBytes: 256L << 20))
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(dim));
            store.PushRange(t, 0, rows, new float[rows * dim]);
            using var stop = new CancellationTokenSource();
            float[] ones = Enumerable.Repeat(1f, 64 * dim).ToArray();
            // New keys append records at the log's tail, on the page a full checkpoint is writing last.
            Task pushes = Task.Run(async () =>
            {
                for (ulong next = rows; !stop.IsCancellationRequested; next += 32)
                {
                    ulong[] keys = TestStore.Keys(next % (2 * rows), 32).Concat(TestStore.Keys(next, 32)).Order().Distinct().ToArray();
                    await store.Push(t, keys, ones.AsSpan(0, keys.Length * dim).ToArray()).Durable;
                }
            });
            for (int i = 0; i < 4; i++) tokens.Add((await store.CheckpointAsync()).Token);   // a full one, then increments
            stop.Cancel();
            await pushes;
            // The full checkpoint's files and each increment's delta log came from the writes, not from reading back.
            Assert.True(store.ChecksumsFromWrites >= 4, $"{store.ChecksumsFromWrites} files vouched for by their writes");
        }
        string checkpoints = Path.Combine(_dir.Directory, "checkpoints");
        int manifests = 0;
        foreach (Guid token in tokens)
            foreach ((long? _, string manifest) in CheckpointManifest.Manifests(checkpoints, token))
            {
                Assert.Equal(ManifestCheck.Valid, CheckpointManifest.Check(checkpoints, token, manifest, out string? problem));
                Assert.Null(problem);
                manifests++;
            }
        Assert.True(manifests >= 4, $"{manifests} manifests");
    }
}
