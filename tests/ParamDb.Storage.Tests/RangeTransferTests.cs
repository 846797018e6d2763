using System.Buffers.Binary;
using ParamDb.Storage.Transfer;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Whole-record transfer: a range's rows as stored (values and optimizer state) and its vector clock, copied from
/// one store to another in batches; range drops; both through the write-ahead log; bad batches refused whole.
/// </summary>
public sealed class RangeTransferTests : IDisposable
{
    private readonly TestStore _a = new(), _b = new();

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    /// <summary>adagrad, so a row's optimizer state differs from a new row's and must travel with it.</summary>
    private static TableSchema Schema => TestStore.Schema(4, updater: new UpdaterSpec { Kind = UpdaterSpec.Adagrad, Lr = 0.1 });

    private static readonly ulong[] Keys = RandomKeys(3000, seed: 5);

    private static ulong[] RandomKeys(int count, int seed)
    {
        var rng = new Random(seed);
        var set = new SortedSet<ulong>();
        while (set.Count < count) set.Add((ulong)rng.NextInt64(1L << 40));
        return [.. set];
    }

    private static float[] Gradient(int rows, float scale)
    {
        var g = new float[rows * 4];
        for (int i = 0; i < g.Length; i++) g[i] = scale * ((i % 7) - 3);
        return g;
    }

    /// <summary>Three clocked pushes by one worker; the second and third to part of the keys, so rows differ in state.</summary>
    private static (TableHandle Table, uint Worker) Fill(ParamStore store)
    {
        TableHandle t = TestStore.Create(store, "t", Schema);
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        Assert.Equal(Keys.Length, store.Push(t, Keys, Gradient(Keys.Length, 1f), new WorkerStamp(w, 1)).Applied);
        ulong[] half = Keys[..1500];
        Assert.Equal(half.Length, store.Push(t, half, Gradient(half.Length, 0.5f), new WorkerStamp(w, 2)).Applied);
        Assert.Equal(half.Length, store.Push(t, half, Gradient(half.Length, -2f), new WorkerStamp(w, 3)).Applied);
        return (t, w);
    }

    /// <summary>
    /// <see cref="Fill"/>s <paramref name="a"/>, and gives <paramref name="b"/> the same table (the same id) and worker
    /// with no rows: what a cluster's metadata mirror leaves on a node before records are copied to it.
    /// </summary>
    private static (TableHandle Source, TableHandle Target, uint Worker) FillAndMirror(ParamStore a, ParamStore b)
    {
        var (source, worker) = Fill(a);
        TableHandle target = TestStore.Create(b, "t", Schema);
        Assert.Equal(worker, b.RegisterWorker("w", [], 60_000).Id);
        return (source, target, worker);
    }

    /// <summary>Copies every range of <paramref name="from"/> to <paramref name="to"/> in batches of at most 1 KiB (~25 rows: ranges take several); returns the batches.</summary>
    private static List<byte[]> CopyAll(ParamStore from, TableHandle source, ParamStore to, TableHandle target)
    {
        var batches = new List<byte[]>();
        foreach (ulong token in from.Ranges.Tokens)
        {
            using RangeCopy copy = from.CopyRange(source, token, maxBatchBytes: 1 << 10);
            while (copy.TryReadNext(out ReadOnlyMemory<byte> batch))
            {
                batches.Add(batch.ToArray());
                to.ApplyRecords(target, batch.Span).GetAwaiter().GetResult();
            }
        }
        return batches;
    }

    [Fact]
    public void CopyingEveryRangeGivesAnEqualTableThatLearnsAndDeduplicatesAlike()
    {
        using ParamStore a = _a.Open(), b = _b.Open();
        var (ta, tb, w) = FillAndMirror(a, b);

        List<byte[]> batches = CopyAll(a, ta, b, tb);
        Assert.True(batches.Count > a.Ranges.Count, "1 KiB batches split ranges");
        Assert.Equal(TestStore.Pull(a, ta, Keys), TestStore.Pull(b, tb, Keys));
        Assert.Equal(a.GetStats(ta), b.GetStats(tb));
        Assert.Equal(3UL, b.ClockMin(tb));

        // The optimizer state came along: the same next step gives the same rows.
        Assert.Equal(Keys.Length, a.Push(ta, Keys, Gradient(Keys.Length, 3f), new WorkerStamp(w, 4)).Applied);
        Assert.Equal(Keys.Length, b.Push(tb, Keys, Gradient(Keys.Length, 3f), new WorkerStamp(w, 4)).Applied);
        Assert.Equal(TestStore.Pull(a, ta, Keys), TestStore.Pull(b, tb, Keys));
        // And the clock: a retry of a push the copy holds is skipped on the receiver.
        Assert.Equal(0, b.Push(tb, Keys, Gradient(Keys.Length, 9f), new WorkerStamp(w, 3)).Applied);
        Assert.Equal(TestStore.Pull(a, ta, Keys), TestStore.Pull(b, tb, Keys));
    }

    [Fact]
    public async Task EveryRangeCopiedInOnePassGivesTheSameTableAndEachRangesClockComesAfterItsRows()
    {
        using ParamStore a = _a.Open(), b = _b.Open();
        var (ta, tb, w) = FillAndMirror(a, b);
        var seen = new HashSet<ulong>();
        int batches = 0;
        using (RangeCopy copy = a.CopyRanges(ta, a.Ranges.Tokens.ToArray(), maxBatchBytes: 1 << 10))
        {
            while (copy.TryReadNext(out ReadOnlyMemory<byte> batch))
            {
                Assert.True(RecordBatch.TryParse(batch.Span, out RecordBatch parsed, out _));
                Assert.False(seen.Contains(parsed.Token), $"range {parsed.Token} got a batch after the one with its clock");
                if (parsed.ClockCount > 0 || parsed.Count == 0) seen.Add(parsed.Token);
                await b.ApplyRecords(tb, batch.Span);
                batches++;
            }
        }
        Assert.Equal(a.Ranges.Count, seen.Count);   // every range closed once
        Assert.True(batches > a.Ranges.Count);
        Assert.Equal(TestStore.Pull(a, ta, Keys), TestStore.Pull(b, tb, Keys));
        Assert.Equal(a.GetStats(ta), b.GetStats(tb));
        Assert.Equal(3UL, b.ClockMin(tb));
        Assert.Equal(0, b.Push(tb, Keys, Gradient(Keys.Length, 9f), new WorkerStamp(w, 3)).Applied);
    }

    [Fact]
    public async Task ABatchAppliedTwiceLeavesWhatItLeftOnce()
    {
        using ParamStore a = _a.Open(), b = _b.Open();
        var (ta, tb, _) = FillAndMirror(a, b);
        List<byte[]> batches = CopyAll(a, ta, b, tb);
        float[] once = TestStore.Pull(b, tb, Keys);
        TableStats stats = b.GetStats(tb);
        foreach (byte[] batch in batches) await b.ApplyRecords(tb, batch);
        Assert.Equal(once, TestStore.Pull(b, tb, Keys));
        Assert.Equal(stats, b.GetStats(tb));
        Assert.Equal(3UL, b.ClockMin(tb));
    }

    [Fact]
    public async Task AppliedRecordsAndClocksSurviveARestartFromTheLogAndFromACheckpoint()
    {
        float[] expected;
        using (ParamStore a = _a.Open(), b = _b.Open())
        {
            var (ta, tb, _) = FillAndMirror(a, b);
            CopyAll(a, ta, b, tb);
            expected = TestStore.Pull(a, ta, Keys);
        }
        for (int round = 0; round < 2; round++)
        {
            using ParamStore b = _b.Open();
            Assert.True(b.TryGetTable("t", out TableHandle? tb));
            Assert.Equal(expected, TestStore.Pull(b, tb!, Keys));
            Assert.Equal(Keys.Length, b.GetStats(tb!).Rows);
            Assert.Equal(3UL, b.ClockMin(tb!));
            if (round == 0) await b.CheckpointAsync();   // the second round recovers from it
        }
    }

    [Fact]
    public async Task DroppingARangeDeletesItsRowsAndResetsItsClockAndOnlyThatAcrossARestart()
    {
        ulong token;
        ulong[] inside, outside;
        float[] outsideValues;
        using (ParamStore a = _a.Open())
        {
            var (t, w) = Fill(a);
            int range = a.Ranges.RangeOf(t.RingHash, Keys[0]);
            token = a.Ranges.Tokens[range];
            inside = Array.FindAll(Keys, k => a.Ranges.RangeOf(t.RingHash, k) == range);
            outside = Array.FindAll(Keys, k => a.Ranges.RangeOf(t.RingHash, k) != range);
            Assert.NotEmpty(inside);
            outsideValues = TestStore.Pull(a, t, outside);

            var (rows, durable) = a.DropRange(t, token);
            await durable;
            Assert.Equal(inside.Length, rows);
            Assert.Equal(Keys.Length - inside.Length, a.GetStats(t).Rows);
            Assert.Equal(new float[inside.Length * 4], TestStore.Pull(a, t, inside));   // the initial value again
            Assert.Equal(outsideValues, TestStore.Pull(a, t, outside));
            Assert.Equal(0UL, a.ClockMin(t));
            // A second drop finds nothing to delete.
            Assert.Equal(0, a.DropRange(t, token).Rows);
            // Its clock is back at 0 there and only there: clock 3 again applies to the dropped range alone.
            Assert.Equal(inside.Length, a.Push(t, Keys, Gradient(Keys.Length, 1f), new WorkerStamp(w, 3)).Applied);
        }
        using (ParamStore reopened = _a.Open())
        {
            Assert.True(reopened.TryGetTable("t", out TableHandle? t));
            Assert.Equal(outsideValues, TestStore.Pull(reopened, t!, outside));
            Assert.Equal(Keys.Length, reopened.GetStats(t!).Rows);
            Assert.Equal(3UL, reopened.ClockMin(t!));
        }
    }

    [Fact]
    public async Task DroppingSeveralRangesAtOnceIsOneLogRecordThatARestartReplays()
    {
        ulong[] tokens;
        ulong[] inside, outside;
        float[] outsideValues, insideValues;
        using (ParamStore a = _a.Open())
        {
            var (t, w) = Fill(a);
            // Every other range that holds one of the keys.
            int[] ranges = [.. Keys.Select(k => a.Ranges.RangeOf(t.RingHash, k)).Distinct().Order().Where((_, i) => i % 2 == 0)];
            Assert.True(ranges.Length >= 2, $"{ranges.Length} ranges");
            tokens = [.. ranges.Select(r => a.Ranges.Tokens[r])];
            inside = Array.FindAll(Keys, k => ranges.Contains(a.Ranges.RangeOf(t.RingHash, k)));
            outside = Array.FindAll(Keys, k => !ranges.Contains(a.Ranges.RangeOf(t.RingHash, k)));
            outsideValues = TestStore.Pull(a, t, outside);

            var (rows, durable) = a.DropRanges(t, tokens);
            await durable;
            Assert.Equal(inside.Length, rows);
            Assert.Equal(outside.Length, a.GetStats(t).Rows);
            Assert.Equal(new float[inside.Length * 4], TestStore.Pull(a, t, inside));
            Assert.Equal(outsideValues, TestStore.Pull(a, t, outside));
            // Clock 3 applies again to the dropped ranges, and only to them.
            Assert.Equal(inside.Length, a.Push(t, Keys, Gradient(Keys.Length, 1f), new WorkerStamp(w, 3)).Applied);
            insideValues = TestStore.Pull(a, t, inside);
            Assert.NotEqual(new float[inside.Length * 4], insideValues);
            // A token that is not a range, or none: refused, nothing dropped.
            Assert.Throws<ArgumentException>(() => a.DropRanges(t, [tokens[0], a.Ranges.Tokens[0] + 1]));
            Assert.Throws<ArgumentException>(() => a.DropRanges(t, []));
            Assert.Equal(Keys.Length, a.GetStats(t).Rows);
        }
        using (ParamStore reopened = _a.Open())   // from the log: the drop replays before the push after it
        {
            Assert.True(reopened.TryGetTable("t", out TableHandle? t));
            Assert.Equal(outsideValues, TestStore.Pull(reopened, t!, outside));
            Assert.Equal(insideValues, TestStore.Pull(reopened, t!, inside));
            Assert.Equal(Keys.Length, reopened.GetStats(t!).Rows);
        }
    }

    [Fact]
    public async Task ShippingTheRowsEachPushTouchedKeepsACopyEqualToThePrimaryAndItsClock()
    {
        // Replication after aggregation: after each push the primary reads the rows it touched in one range as
        // whole records, with the range's clock, and the backup applies them.
        using ParamStore a = _a.Open(), b = _b.Open();
        TableHandle ta = TestStore.Create(a, "t", Schema), tb = TestStore.Create(b, "t", Schema);
        uint w = a.RegisterWorker("w", [], 60_000).Id;
        b.RegisterWorker("w", [], 60_000);
        ulong token = a.Ranges.Tokens[a.Ranges.RangeOf(ta.RingHash, Keys[0])];
        ulong[] range = Array.FindAll(Keys, k => a.Ranges.Tokens[a.Ranges.RangeOf(ta.RingHash, k)] == token);
        var shipped = new System.Buffers.ArrayBufferWriter<byte>();
        for (ulong clock = 1; clock <= 3; clock++)
        {
            ulong[] touched = clock == 2 ? range[..(range.Length / 2)] : range;
            a.Push(ta, touched, Gradient(touched.Length, clock), new WorkerStamp(w, clock));
            shipped.ResetWrittenCount();
            int length = a.ReadRecords(ta, token, touched, shipped);
            Assert.Equal(length, shipped.WrittenCount);
            await b.ApplyRecords(tb, shipped.WrittenSpan);
            Assert.Equal(TestStore.Pull(a, ta, range), TestStore.Pull(b, tb, range));
        }
        Assert.Equal(range.Length, b.GetStats(tb).Rows);
        // The clock came along: a retry of clock 3 is skipped on the copy's range, and only there.
        Assert.Equal(0, b.Push(tb, range, Gradient(range.Length, 9f), new WorkerStamp(w, 3)).Applied);

        // A key without a row is left out; keys out of order, outside the range or an unknown token are refused.
        ulong absent = Enumerable.Range(1, 1 << 20).Select(i => (ulong)i << 12).First(k => a.Ranges.Tokens[a.Ranges.RangeOf(ta.RingHash, k)] == token && Array.IndexOf(range, k) < 0);
        ulong[] withAbsent = [.. range.Append(absent).Order()];
        shipped.ResetWrittenCount();
        a.ReadRecords(ta, token, withAbsent, shipped);
        Assert.True(RecordBatch.TryParse(shipped.WrittenSpan, out RecordBatch batch, out _));
        Assert.Equal(range, batch.Keys.ToArray());
        Assert.Throws<ArgumentException>(() => a.ReadRecords(ta, token, [range[1], range[0]], shipped));
        ulong outside = Array.Find(Keys, k => a.Ranges.Tokens[a.Ranges.RangeOf(ta.RingHash, k)] != token);
        Assert.Throws<ArgumentException>(() => a.ReadRecords(ta, token, [outside], shipped));
        Assert.Throws<ArgumentException>(() => a.ReadRecords(ta, 12345, range, shipped));
    }

    [Fact]
    public async Task ManyRangesWrittenInOneCallAreOneLogRecordAllOrNothingAndSurviveARestart()
    {
        byte[] all;
        float[] expected;
        using (ParamStore a = _a.Open(), b = _b.Open())
        {
            var (ta, tb, _) = FillAndMirror(a, b);
            expected = TestStore.Pull(a, ta, Keys);
            var joined = new List<byte>();
            using (RangeCopy copy = a.CopyRanges(ta, a.Ranges.Tokens.ToArray()))
                while (copy.TryReadNext(out ReadOnlyMemory<byte> batch)) joined.AddRange(batch.ToArray());
            all = [.. joined];
            // A spoiled last batch: nothing of the others is written either.
            byte[] spoiled = [.. all];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(spoiled.AsSpan(LastBatchStart(all) + 4), 99);   // its table id
            await Assert.ThrowsAsync<ArgumentException>(() => b.ApplyRecords(tb, spoiled));
            Assert.Equal(0, b.GetStats(tb).Rows);
            await b.ApplyRecords(tb, all);
            Assert.Equal(expected, TestStore.Pull(b, tb, Keys));
        }
        using ParamStore reopened = _b.Open();   // the one log record replayed
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.Equal(expected, TestStore.Pull(reopened, t!, Keys));
        Assert.Equal(3UL, reopened.ClockMin(t!));
    }

    /// <summary>Where the last of several batches written back to back starts.</summary>
    private static int LastBatchStart(byte[] batches)
    {
        var slices = new List<Range>();
        Assert.True(RecordBatch.TrySplit(batches, slices, out _, out string error), error);
        return slices[^1].Start.Value;
    }

    [Fact]
    public async Task AnExportLeavesOutADroppedRangeAndHasItAgainOnceItsRecordsAreBack()
    {
        using ParamStore a = _a.Open(), b = _b.Open();
        var (ta, tb, _) = FillAndMirror(a, b);
        CopyAll(a, ta, b, tb);
        int range = b.Ranges.RangeOf(tb.RingHash, Keys[0]);
        ulong token = b.Ranges.Tokens[range];
        ulong[] kept = Array.FindAll(Keys, k => b.Ranges.RangeOf(tb.RingHash, k) != range);
        await b.DropRange(tb, token).Durable;

        Assert.Equal(kept, await ExportedKeysAsync(b, tb));
        // The range comes back from its primary: the rows are there again, in the export too.
        using (RangeCopy copy = a.CopyRange(ta, token))
        {
            while (copy.TryReadNext(out ReadOnlyMemory<byte> batch)) await b.ApplyRecords(tb, batch.Span);
        }
        Assert.Equal(Keys, await ExportedKeysAsync(b, tb));
        Assert.Equal(TestStore.Pull(a, ta, Keys), TestStore.Pull(b, tb, Keys));
    }

    private static async Task<ulong[]> ExportedKeysAsync(ParamStore store, TableHandle table)
    {
        using Export.TableExport export = store.PrepareExport(table, runKeys: 500);   // several runs: the filtered merge
        using var file = new MemoryStream();
        await export.WriteToAsync(file);
        byte[] bytes = file.ToArray();
        Assert.True(ParamDb.Protocol.Safetensors.SafetensorsHeader.TryParse(bytes, bytes.Length, out var header, out var error), error.Detail);
        Assert.Equal(export.Rows, header!.Count);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes.AsSpan((int)header.KeysOffset, (int)header.KeysLength)).ToArray();
    }

    [Fact]
    public void ACopyFromATableLargerThanMemoryReadsItsRowsFromDisk()
    {
        using ParamStore a = _a.Open(memoryBytes: 16L << 20), b = _b.Open();
        TableHandle ta = TestStore.Create(a, "t", Schema), tb = TestStore.Create(b, "t", Schema);
        // 100,000 rows of ~100 bytes is 2/3 of the 16 MiB budget's log pages on disk after these pushes.
        ulong[] keys = RandomKeys(100_000, seed: 9);
        for (int i = 0; i < 3; i++) a.Push(ta, keys, Gradient(keys.Length, i + 1));
        CopyAll(a, ta, b, tb);
        Assert.Equal(TestStore.Pull(a, ta, keys), TestStore.Pull(b, tb, keys));
        Assert.Equal(keys.Length, b.GetStats(tb).Rows);
    }

    public static TheoryData<string, Func<byte[], byte[]>> BadBatches => new()
    {
        { "truncated", b => b[..^1] },
        { "too short for a header", b => b[..20] },
        { "unknown format", b => With(b, 0, 2) },
        { "another table", b => With(b, 4, 99) },
        { "another layout", b => With(b, 16, 20) },
        { "a token that ends no range", b => With64(b, 8, 12345) },
        { "keys out of order", SwapFirstKeys },
        { "a key of another range", b => With64(b, RecordBatch.HeaderSize, ForeignKey(b)) },
    };

    private static byte[] With(byte[] batch, int offset, uint value)
    {
        byte[] copy = [.. batch];
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] With64(byte[] batch, int offset, ulong value)
    {
        byte[] copy = [.. batch];
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] SwapFirstKeys(byte[] batch)
    {
        byte[] copy = [.. batch];
        ulong k0 = BinaryPrimitives.ReadUInt64LittleEndian(copy.AsSpan(RecordBatch.HeaderSize));
        ulong k1 = BinaryPrimitives.ReadUInt64LittleEndian(copy.AsSpan(RecordBatch.HeaderSize + 8));
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(RecordBatch.HeaderSize), k1);
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(RecordBatch.HeaderSize + 8), k0);
        return copy;
    }

    /// <summary>A key below the batch's second key whose range is not the batch's, so only the range check can refuse it.</summary>
    private static ulong ForeignKey(byte[] batch)
    {
        var ring = new StoreOptions { DataDirectory = "x" }.Ring;
        ulong hash = ParamDb.Protocol.Ring.NameHash("t");
        ulong token = BinaryPrimitives.ReadUInt64LittleEndian(batch.AsSpan(8));
        ulong second = BinaryPrimitives.ReadUInt64LittleEndian(batch.AsSpan(RecordBatch.HeaderSize + 8));
        for (ulong k = 0; k < second; k += 1 << ParamDb.Protocol.Ring.BlockBits)
            if (ring.Tokens[ring.RangeOf(hash, k)] != token) return k;
        throw new InvalidOperationException("No foreign key below the second key.");
    }

    [Theory]
    [MemberData(nameof(BadBatches))]
    public async Task ABadBatchIsRefusedWholeAndChangesNothing(string what, Func<byte[], byte[]> spoil)
    {
        using ParamStore a = _a.Open(), b = _b.Open();
        var (ta, tb, _) = FillAndMirror(a, b);
        // The biggest range, so it has at least two keys and a foreign key fits below its second one.
        ulong token = a.Ranges.Tokens.ToArray().MaxBy(tok => Array.FindAll(Keys, k => a.Ranges.Tokens[a.Ranges.RangeOf(ta.RingHash, k)] == tok).Length);
        using RangeCopy copy = a.CopyRange(ta, token);
        Assert.True(copy.TryReadNext(out ReadOnlyMemory<byte> good));
        byte[] bad = spoil(good.ToArray());

        var e = await Assert.ThrowsAsync<ArgumentException>(() => b.ApplyRecords(tb, bad));
        Assert.False(string.IsNullOrEmpty(e.Message), what);
        Assert.Equal(new float[Keys.Length * 4], TestStore.Pull(b, tb, Keys));
        Assert.Equal(0, b.GetStats(tb).Rows);
        Assert.Equal(0UL, b.ClockMin(tb));
        // The good batch still applies.
        await b.ApplyRecords(tb, good.Span);
        Assert.True(b.GetStats(tb).Rows > 1);
    }

    [Fact]
    public async Task AKeyBeyondMaxKeyIsRefused()
    {
        using ParamStore a = _a.Open(), b = _b.Open();
        TableHandle ta = TestStore.Create(a, "t", TestStore.Schema(2));
        Assert.True(new TableSchema { Dim = 2, MaxKey = 100 }.TryNormalize(out TableSchema bounded, out _));
        TableHandle tb = TestStore.Create(b, "t", bounded);
        a.Push(ta, [500], [1f, 2f]);
        using RangeCopy copy = a.CopyRange(ta, a.Ranges.Tokens[a.Ranges.RangeOf(ta.RingHash, 500)]);
        Assert.True(copy.TryReadNext(out ReadOnlyMemory<byte> batch));
        Assert.Contains("maxKey", (await Assert.ThrowsAsync<ArgumentException>(() => b.ApplyRecords(tb, batch.Span))).Message);
        Assert.Equal(0, b.GetStats(tb).Rows);
    }
}
