using System.Buffers.Binary;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Tests;

/// <summary>The write-ahead log on a real folder: group commit, replay, torn tails, damage, segments, truncation.</summary>
public sealed class WriteAheadLogTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "paramdb-wal-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>A payload that names its writer and sequence, of a size that varies with them.</summary>
    private static byte[] Payload(int writer, int i)
    {
        var payload = new byte[8 + (writer * 31 + i * 7) % 200];
        BinaryPrimitives.WriteInt32LittleEndian(payload, writer);
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), i);
        for (int b = 8; b < payload.Length; b++) payload[b] = (byte)(writer + i + b);
        return payload;
    }

    /// <summary>The log replays exactly the records in <paramref name="written"/>, LSNs 1…n in order, each with its bytes.</summary>
    private void AssertReplayedInLsnOrder(Dictionary<long, byte[]> written)
    {
        var records = ReadAll();
        Assert.Equal(written.Count, records.Count);
        for (int i = 0; i < records.Count; i++)
        {
            Assert.Equal(i + 1, records[i].Lsn);
            Assert.Equal(written[records[i].Lsn], records[i].Payload);
        }
    }

    private List<(long Lsn, byte[] Payload)> ReadAll(long fromLsn = 1)
    {
        var records = new List<(long, byte[])>();
        WalReader.Replay(_directory, fromLsn, (lsn, payload) => records.Add((lsn, payload.ToArray())));
        return records;
    }

    [Fact]
    public async Task ConcurrentAppendsAreAllReplayedInLsnOrderWithTheirBytes()
    {
        const int Writers = 4, PerWriter = 500;
        var written = new Dictionary<long, byte[]>();
        using (var wal = WriteAheadLog.Open(_directory, segmentBytes: 1 << 20, flushToDisk: false))
        {
            var tasks = new Task[Writers];
            for (int w = 0; w < Writers; w++)
            {
                int writer = w;
                tasks[w] = Task.Factory.StartNew(async () =>
                {
                    for (int i = 0; i < PerWriter; i++)
                    {
                        byte[] payload = Payload(writer, i);
                        var (lsn, durable) = wal.Append(payload);
                        lock (written) written.Add(lsn, payload);
                        if (i % 50 == 0) await durable; // most appends do not wait, so batches form
                    }
                }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
            }
            await Task.WhenAll(tasks);
            Assert.Equal(Writers * PerWriter, wal.LastLsn);
        }

        AssertReplayedInLsnOrder(written);
    }

    /// <summary>
    /// Group commit, where it cannot depend on scheduling: in fsync mode the writer thread syncs each batch, and the
    /// appends that arrive meanwhile (microseconds each, against a sync of a millisecond or more) join the next one.
    /// The wal-mode test above once saw every append of a loaded machine written alone, which is allowed there.
    /// </summary>
    [Fact]
    public async Task AppendsArrivingDuringASyncShareTheNextBatch()
    {
        const int Writers = 4, PerWriter = 200;
        using var wal = WriteAheadLog.Open(_directory, segmentBytes: 1 << 20, flushToDisk: true);
        var tasks = new Task[Writers];
        for (int w = 0; w < Writers; w++)
        {
            int writer = w;
            tasks[w] = Task.Factory.StartNew(async () =>
            {
                Task? last = null;
                for (int i = 0; i < PerWriter; i++) last = wal.Append(Payload(writer, i)).Durable;
                await last!;
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        }
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(Writers * PerWriter, wal.DurableLsn);
        Assert.True(wal.Batches < Writers * PerWriter / 2, $"{wal.Batches} batches for {Writers * PerWriter} records: appends were not grouped");
    }

    [Fact]
    public async Task ARecordIsInTheFileWhenItsTaskCompletes()
    {
        foreach (bool fsync in new[] { false, true })
        {
            string directory = Path.Combine(_directory, fsync ? "fsync" : "os");
            using var wal = WriteAheadLog.Open(directory, segmentBytes: 1 << 20, flushToDisk: fsync);
            var (lsn, durable) = wal.Append(Payload(1, 1));
            await durable.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(wal.DurableLsn >= lsn);

            // Read while the log is still open: what a process killed now would leave behind.
            var seen = new List<long>();
            WalReader.Replay(directory, 1, (l, payload) =>
            {
                Assert.Equal(Payload(1, 1), payload.ToArray());
                seen.Add(l);
            });
            Assert.Equal([lsn], seen);
        }
    }

    /// <summary>
    /// In wal mode a lone appender writes its record itself, straight from its parts (no copy into the batch): the
    /// record is in the file, whole and in order, before Append returns, and the next record follows it.
    /// </summary>
    [Fact]
    public void ALoneAppendersRecordOfThreePartsIsWrittenWholeBeforeAppendReturns()
    {
        byte[] a = Payload(1, 1), b = Payload(2, 5), c = new byte[3 << 20];   // c: larger than the 1 MiB batch buffer
        Random.Shared.NextBytes(c);
        using var wal = WriteAheadLog.Open(_directory, segmentBytes: 1 << 20, flushToDisk: false);
        var (first, durable) = wal.Append(a, b, c);
        Assert.True(durable.IsCompletedSuccessfully);
        Assert.Equal(first, wal.DurableLsn);
        var (second, _) = wal.Append(b, [], a);
        Assert.Equal(second, wal.DurableLsn);

        var records = ReadAll();
        Assert.Equal([first, second], records.ConvertAll(r => r.Lsn));
        Assert.Equal([.. a, .. b, .. c], records[0].Payload);
        Assert.Equal([.. b, .. a], records[1].Payload);
    }

    [Fact]
    public async Task ReplayStartsAtTheGivenLsn()
    {
        using (var wal = WriteAheadLog.Open(_directory, 1 << 20, false))
        {
            for (int i = 0; i < 10; i++) await wal.Append(Payload(0, i)).Durable;
        }
        var records = ReadAll(fromLsn: 7);
        Assert.Equal([7L, 8L, 9L, 10L], records.ConvertAll(r => r.Lsn));
        Assert.Equal(Payload(0, 6), records[0].Payload);
    }

    [Theory]
    [InlineData("truncated payload", -5)]
    [InlineData("truncated header", -1)]
    [InlineData("flipped byte", 0)]
    public async Task ATornTailEndsTheLogAndReopeningContinuesAfterTheLastGoodRecord(string damage, int cut)
    {
        using (var wal = WriteAheadLog.Open(_directory, 1 << 20, false))
        {
            for (int i = 0; i < 5; i++) await wal.Append(Payload(0, i)).Durable;
        }
        string segment = Assert.Single(Directory.GetFiles(_directory));
        byte[] bytes = File.ReadAllBytes(segment);
        int lastRecord = bytes.Length - (WalFormat.HeaderSize + Payload(0, 4).Length);
        if (cut == 0) bytes[^3] ^= 0x40;                                   // inside the last payload
        else if (cut == -1) bytes = bytes[..(lastRecord + 9)];             // inside the last header
        else bytes = bytes[..^-cut];                                       // inside the last payload
        File.WriteAllBytes(segment, bytes);

        Assert.Equal([1L, 2L, 3L, 4L], ReadAll().ConvertAll(r => r.Lsn));

        using (var wal = WriteAheadLog.Open(_directory, 1 << 20, false))
        {
            Assert.Equal(4, wal.LastLsn);
            Assert.Equal(lastRecord, new FileInfo(segment).Length); // the torn bytes are gone
            var (lsn, durable) = wal.Append(Payload(9, 9));
            await durable;
            Assert.Equal(5, lsn);
        }
        var records = ReadAll();
        Assert.True(records.Count == 5, damage);
        Assert.Equal(Payload(9, 9), records[4].Payload);
    }

    [Fact]
    public async Task DamageBeforeTheNewestSegmentIsAnErrorNamingTheFile()
    {
        using (var wal = WriteAheadLog.Open(_directory, segmentBytes: 512, flushToDisk: false))
        {
            for (int i = 0; i < 20; i++) await wal.Append(Payload(0, i)).Durable; // a batch per record: many segments
        }
        var segments = WalFormat.ListSegments(_directory);
        Assert.True(segments.Count >= 3, $"{segments.Count} segments");
        string damaged = segments[1].Path;
        byte[] bytes = File.ReadAllBytes(damaged);
        bytes[WalFormat.HeaderSize + 2] ^= 0x01;
        File.WriteAllBytes(damaged, bytes);

        var e = Assert.Throws<WalCorruptException>(() => ReadAll());
        Assert.Contains(Path.GetFileName(damaged), e.Message);
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public async Task AMissingSegmentIsAnError()
    {
        using (var wal = WriteAheadLog.Open(_directory, segmentBytes: 512, flushToDisk: false))
        {
            for (int i = 0; i < 20; i++) await wal.Append(Payload(0, i)).Durable;
        }
        var segments = WalFormat.ListSegments(_directory);
        File.Delete(segments[1].Path);

        var e = Assert.Throws<WalCorruptException>(() => ReadAll());
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public async Task TruncationDropsOnlySegmentsWhollyBeforeTheLsn()
    {
        using var wal = WriteAheadLog.Open(_directory, segmentBytes: 512, flushToDisk: false);
        for (int i = 0; i < 20; i++) await wal.Append(Payload(0, i)).Durable;
        var before = WalFormat.ListSegments(_directory);
        long keepFrom = before[2].FirstLsn + 1; // inside the third segment

        int deleted = wal.TruncateBefore(keepFrom);

        Assert.Equal(2, deleted);
        var after = WalFormat.ListSegments(_directory);
        Assert.Equal(before[2].FirstLsn, after[0].FirstLsn);
        var records = ReadAll(fromLsn: keepFrom);
        Assert.Equal(keepFrom, records[0].Lsn);
        Assert.Equal(20, records[^1].Lsn);
        Assert.Equal(after.Count - 1, wal.TruncateBefore(long.MaxValue)); // everything but the newest segment
        Assert.Single(WalFormat.ListSegments(_directory));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ManyThreadsAppendingAndWaitingEachFindTheirRecordWrittenWhenTheirTaskCompletes(bool fsync)
    {
        // Every appender waits for its own record, so leaders (wal mode) and the writer thread (records left
        // behind, and fsync mode) take turns; small segments make batches roll over mid-run.
        const int Writers = 8, PerWriter = 150;
        var written = new Dictionary<long, byte[]>();
        long maxSeenDurable = 0;
        using (var wal = WriteAheadLog.Open(_directory, segmentBytes: 16 << 10, flushToDisk: fsync))
        {
            var threads = new Thread[Writers];
            Exception? failure = null;
            for (int w = 0; w < Writers; w++)
            {
                int writer = w;
                threads[w] = new Thread(() =>
                {
                    try
                    {
                        for (int i = 0; i < PerWriter; i++)
                        {
                            byte[] payload = Payload(writer, i);
                            var (lsn, durable) = wal.Append(payload);
                            lock (written) written.Add(lsn, payload);
                            durable.Wait(TimeSpan.FromSeconds(30));
                            Assert.True(durable.IsCompletedSuccessfully);
                            long durableLsn = wal.DurableLsn;
                            Assert.True(durableLsn >= lsn, $"record {lsn} completed with the log durable only to {durableLsn}");
                            lock (written) maxSeenDurable = Math.Max(maxSeenDurable, durableLsn);
                            Assert.True(wal.WhenDurable(lsn).IsCompletedSuccessfully);
                        }
                    }
                    catch (Exception e)
                    {
                        Interlocked.CompareExchange(ref failure, e, null);
                    }
                });
                threads[w].Start();
            }
            foreach (Thread t in threads) t.Join();
            Assert.Null(failure);
            Assert.Equal(Writers * PerWriter, wal.LastLsn);
            Assert.Equal(Writers * PerWriter, wal.DurableLsn);
        }

        AssertReplayedInLsnOrder(written);
        Assert.True(WalFormat.ListSegments(_directory).Count > 1, "segments did not roll over");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AFailedWriteFaultsItsBatchAndEveryLaterAppendAndWait(bool fsync)
    {
        // A real failure, not a mock: the log's folder disappears, so the next segment cannot be created
        // (a tiny segment size makes every batch start one).
        using var wal = WriteAheadLog.Open(_directory, segmentBytes: 1, flushToDisk: fsync);
        await wal.Append(Payload(0, 0)).Durable.WaitAsync(TimeSpan.FromSeconds(30));
        Directory.Delete(_directory, recursive: true);

        var tasks = new List<Task>();
        var appenders = new Thread[4];
        for (int w = 0; w < appenders.Length; w++)
        {
            int writer = w;
            appenders[w] = new Thread(() =>
            {
                for (int i = 0; i < 20; i++)
                {
                    try
                    {
                        Task durable = wal.Append(Payload(writer, i)).Durable;
                        lock (tasks) tasks.Add(durable);
                    }
                    catch (IOException)
                    {
                        // Refused outright once the failure is known: the same answer, sooner.
                    }
                }
            });
            appenders[w].Start();
        }
        foreach (Thread t in appenders) t.Join();

        Assert.NotEmpty(tasks);
        foreach (Task durable in tasks)
        {
            var e = await Assert.ThrowsAnyAsync<IOException>(() => durable.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("could not write", e.Message);
        }
        Assert.Equal(1, wal.DurableLsn);
        Assert.Throws<IOException>(() => wal.Append(Payload(9, 9)));
        await Assert.ThrowsAnyAsync<IOException>(() => wal.WhenDurable(wal.LastLsn));
    }

    [Fact]
    public void AppendsAfterDisposeAreRefused()
    {
        var wal = WriteAheadLog.Open(_directory, 1 << 20, false);
        wal.Dispose();
        Assert.Throws<ObjectDisposedException>(() => wal.Append(Payload(0, 0)));
    }
}
