using System.Buffers.Binary;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Tests;

/// <summary>
/// The write-ahead log read on a read-ahead thread: with chunks small enough that headers and payloads cross
/// chunk ends, every record still comes back whole and in order, and every check still fires where it did.
/// </summary>
public sealed class WalReadAheadTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "paramdb-wal-readahead-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        // Also proves the reader closed its files: deleting an open file's folder works on Linux, but a leaked
        // reader thread would still be reading here.
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Chunk sizes below a header (16 B), around typical payloads, and far above the whole log.</summary>
    public static TheoryData<int> ChunkSizes => new() { 1, 7, 16, 100, 4096, WalReadAhead.DefaultChunkBytes };

    /// <summary>Record <paramref name="i"/>'s payload: 8 to ~5,000 bytes, every tenth far larger than small chunks.</summary>
    private static byte[] Payload(int i)
    {
        var payload = new byte[8 + (i % 10 == 9 ? 5000 : i * 13 % 300)];
        BinaryPrimitives.WriteInt32LittleEndian(payload, i);
        for (int b = 4; b < payload.Length; b++) payload[b] = (byte)(i * 31 + b);
        return payload;
    }

    /// <summary>Writes <paramref name="count"/> records, each its own batch, into segments of about 2 KiB.</summary>
    private async Task WriteLog(int count)
    {
        using var wal = WriteAheadLog.Open(_directory, segmentBytes: 2048, flushToDisk: false);
        for (int i = 0; i < count; i++) await wal.Append(Payload(i)).Durable;
    }

    private List<(long Lsn, byte[] Payload)> Read(int chunkBytes, out WalScan scan, long fromLsn = 1)
    {
        var records = new List<(long, byte[])>();
        scan = WalReader.Scan(_directory, fromLsn, (lsn, payload) => records.Add((lsn, payload.ToArray())), chunkBytes);
        return records;
    }

    [Theory]
    [MemberData(nameof(ChunkSizes))]
    public async Task EveryRecordComesBackWholeAndInOrderWhateverTheChunkSize(int chunkBytes)
    {
        await WriteLog(60);
        Assert.True(WalFormat.ListSegments(_directory).Count >= 5, "records should span several segments");

        var records = Read(chunkBytes, out WalScan scan);

        Assert.Equal(60, records.Count);
        for (int i = 0; i < records.Count; i++)
        {
            Assert.Equal(i + 1, records[i].Lsn);
            Assert.Equal(Payload(i), records[i].Payload);
        }
        Assert.Equal(60, scan.LastLsn);
        Assert.Null(scan.TornSegment);
        Assert.Equal(WalFormat.ListSegments(_directory).Count, scan.Segments);
        long bytes = 0;
        foreach ((_, string path) in WalFormat.ListSegments(_directory)) bytes += new FileInfo(path).Length;
        Assert.Equal(bytes, scan.BytesRead);
    }

    [Theory]
    [MemberData(nameof(ChunkSizes))]
    public async Task ReplayFromAnLsnSkipsTheRecordsBeforeItButChecksThem(int chunkBytes)
    {
        await WriteLog(40);
        var records = Read(chunkBytes, out WalScan scan, fromLsn: 33);
        Assert.Equal([33L, 34L, 35L, 36L, 37L, 38L, 39L, 40L], records.ConvertAll(r => r.Lsn));
        Assert.Equal(Payload(32), records[0].Payload);
        Assert.Equal(40, scan.LastLsn);
    }

    public static TheoryData<int, string> TearsByChunkSize()
    {
        var data = new TheoryData<int, string>();
        foreach (int chunk in new[] { 1, 7, 16, 100, 4096 })
            foreach (string tear in new[] { "truncated header", "truncated payload", "flipped byte" })
                data.Add(chunk, tear);
        return data;
    }

    [Theory]
    [MemberData(nameof(TearsByChunkSize))]
    public async Task ATornTailOfTheNewestSegmentEndsTheLogWhereItsLastWholeRecordEnds(int chunkBytes, string tear)
    {
        await WriteLog(30);
        string newest = WalFormat.ListSegments(_directory)[^1].Path;
        byte[] bytes = File.ReadAllBytes(newest);
        int lastPayload = Payload(29).Length, lastRecord = bytes.Length - WalFormat.HeaderSize - lastPayload;
        bytes = tear switch
        {
            "truncated header" => bytes[..(lastRecord + 9)],
            "truncated payload" => bytes[..^3],
            _ => Flip(bytes, bytes.Length - 2),
        };
        File.WriteAllBytes(newest, bytes);

        var records = Read(chunkBytes, out WalScan scan);

        Assert.Equal(29, records.Count);
        Assert.Equal(Payload(28), records[^1].Payload);
        Assert.Equal(29, scan.LastLsn);
        Assert.Equal(newest, scan.TornSegment);
        Assert.Equal(lastRecord, scan.TornAt);
    }

    [Theory]
    [MemberData(nameof(ChunkSizes))]
    public async Task AChecksumFailureInAnOlderSegmentIsAnErrorNamingTheFile(int chunkBytes)
    {
        await WriteLog(60);
        var segments = WalFormat.ListSegments(_directory);
        string damaged = segments[2].Path;
        File.WriteAllBytes(damaged, Flip(File.ReadAllBytes(damaged), WalFormat.HeaderSize + 3));

        var seen = new List<long>();
        var e = Assert.Throws<WalCorruptException>(() => WalReader.Scan(_directory, 1, (lsn, _) => seen.Add(lsn), chunkBytes));

        Assert.Contains(Path.GetFileName(damaged), e.Message);
        Assert.Contains("at byte 0: a record fails its checksum", e.Message);
        Assert.Equal(segments[2].FirstLsn - 1, seen[^1]);   // everything before the damage was handed out, nothing after
    }

    [Theory]
    [MemberData(nameof(ChunkSizes))]
    public async Task AMissingSegmentIsAnErrorNamingWhereTheLogSkips(int chunkBytes)
    {
        await WriteLog(60);
        var segments = WalFormat.ListSegments(_directory);
        File.Delete(segments[1].Path);

        var e = Assert.Throws<WalCorruptException>(() => Read(chunkBytes, out _));

        Assert.Contains($"skips from record {segments[1].FirstLsn - 1} to {segments[2].FirstLsn}", e.Message);
        Assert.Contains("a segment is missing", e.Message);
    }

    /// <summary>
    /// A damaged length that still fits in the file makes the reader take intact records as the bad one's payload,
    /// and it reads forward only: it goes on from the first intact record after them when the replay needs none of
    /// the records it passed over, and refuses when it needs one. It never hands out a record twice or skips one
    /// silently.
    /// </summary>
    [Fact]
    public async Task ALengthDamagedToSpanIntactRecordsSkipsThemOnlyWhenTheReplayNeedsNone()
    {
        const int payload = 100, record = WalFormat.HeaderSize + payload;
        using (var wal = WriteAheadLog.Open(_directory, segmentBytes: 1 << 20, flushToDisk: false))
        {
            for (int i = 0; i < 10; i++) await wal.Append(new byte[payload]).Durable;
        }
        string segment = Assert.Single(WalFormat.ListSegments(_directory)).Path;
        byte[] bytes = File.ReadAllBytes(segment);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(3 * record), payload + 2 * record);   // record 4 now spans 5 and 6
        File.WriteAllBytes(segment, bytes);

        var records = Read(4096, out WalScan scan, fromLsn: 7);
        Assert.Equal([7L, 8L, 9L, 10L], records.ConvertAll(r => r.Lsn));
        Assert.Equal(10, scan.LastLsn);

        var e = Assert.Throws<WalCorruptException>(() => Read(4096, out _, fromLsn: 5));
        Assert.Equal(4, e.Damage!.Lsn);
        Assert.Equal(3 * record, e.Damage.Offset);
    }

    [Fact]
    public async Task SegmentsWhollyBeforeTheReplayStartAreNotReadButTheOneHoldingItIs()
    {
        await WriteLog(60);
        var segments = WalFormat.ListSegments(_directory);
        string first = segments[0].Path;
        File.WriteAllBytes(first, Flip(File.ReadAllBytes(first), WalFormat.HeaderSize + 3));

        // From the first record of the second segment: the damaged first one holds nothing needed.
        var records = Read(4096, out WalScan scan, fromLsn: segments[1].FirstLsn);
        Assert.Equal(segments[1].FirstLsn, records[0].Lsn);
        Assert.Equal(60, records[^1].Lsn);
        Assert.Equal(segments.Count - 1, scan.Segments);
        Assert.Equal(60, scan.LastLsn);

        // From the first segment's last record: it is read, and the damaged first record is skipped, because the
        // replay needs none of the records the damage took (the intact ones after it prove it is not a torn tail).
        records = Read(4096, out scan, fromLsn: segments[1].FirstLsn - 1);
        Assert.Equal(segments[1].FirstLsn - 1, records[0].Lsn);
        Assert.Equal(60, scan.LastLsn);

        // From the damaged record itself: the replay needs it, and its damage is an error naming the file.
        var e = Assert.Throws<WalCorruptException>(() => Read(4096, out _, fromLsn: 1));
        Assert.Contains(Path.GetFileName(first), e.Message);
        Assert.Equal(1, e.Damage!.Lsn);
        Assert.Equal(2, e.Damage.FirstLsnAfter);
        Assert.Equal(59, e.Damage.IntactAfter);
    }

    [Fact]
    public async Task AVisitorThatFailsStopsTheReplayAndTheReaderThread()
    {
        await WriteLog(60);
        // Small chunks: the reader is still filling its queue when the visitor throws on the third record.
        var e = Assert.Throws<InvalidOperationException>(() =>
            WalReader.Scan(_directory, 1, (lsn, _) => { if (lsn == 3) throw new InvalidOperationException("stop"); }, chunkBytes: 64));
        Assert.Equal("stop", e.Message);
        // The files are closed again: the log can be opened for appending and continues after record 60.
        using var wal = WriteAheadLog.Open(_directory, segmentBytes: 2048, flushToDisk: false);
        Assert.Equal(60, wal.LastLsn);
    }

    [Fact]
    public void ASegmentThatCannotBeOpenedFailsWhereTheReplayReachesIt()
    {
        Directory.CreateDirectory(_directory);
        string present = Path.Combine(_directory, "present.log"), absent = Path.Combine(_directory, "absent.log");
        File.WriteAllBytes(present, [1, 2, 3]);
        using var reads = new WalReadAhead([present, absent], chunkBytes: 2);
        byte[] scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(4);   // Take may hand it back to the pool

        reads.NextSegment();
        Assert.Equal([1, 2, 3], reads.Take(3, ref scratch).ToArray());
        Assert.True(reads.Take(1, ref scratch).IsEmpty);
        Assert.Throws<FileNotFoundException>(reads.NextSegment);
    }

    private static byte[] Flip(byte[] bytes, int at)
    {
        bytes[at] ^= 0x40;
        return bytes;
    }
}
