using ParamDb.Protocol;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Changing the store's ranges at run time (a cluster node's ring changes): every worker's clock moves with its
/// positions, the change is logged and kept, and a restart comes back with it.
/// </summary>
public sealed class StoreRangesTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly ulong[] Keys = Enumerable.Range(0, 400).Select(i => (ulong)i << 12).ToArray();   // one key per block: every range gets some

    private static float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();

    /// <summary>The default ring with a token added in the middle of each of its first 10 ranges, and its last 5 tokens gone.</summary>
    private static Ring Changed(Ring ring)
    {
        var tokens = new List<ulong>(ring.Tokens.ToArray()[..^5]);
        for (int i = 1; i <= 10; i++) tokens.Add(ring.Tokens[i - 1] + (ring.Tokens[i] - ring.Tokens[i - 1]) / 2);
        return new Ring(tokens);
    }

    [Fact]
    public async Task ClocksFollowTheirPositionsThroughASplitAndAMergeAndSurviveRestarts()
    {
        Ring next;
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
            uint w = store.RegisterWorker("w", [], 60_000).Id;
            Assert.Equal(Keys.Length, store.Push(t, Keys, Ones(Keys.Length), new WorkerStamp(w, 5)).Applied);
            // One range behind the others: dropped, its clock back at 0.
            ulong dropped = store.Ranges.Tokens[3];
            await store.DropRange(t, dropped).Durable;

            next = Changed(store.Ranges);
            await store.SetRanges(next);
            Assert.Equal(next.Tokens.ToArray(), store.Ranges.Tokens.ToArray());
            AssertOnlyTheDroppedPositionsTakeClock5Again(store, t, w, dropped);
        }
        for (int round = 0; round < 2; round++)
        {
            using ParamStore reopened = _dir.Open();   // round 0 from the log, round 1 from the checkpoint it takes
            Assert.Equal(next.Tokens.ToArray(), reopened.Ranges.Tokens.ToArray());
            Assert.True(reopened.TryGetTable("t", out TableHandle? t));
            Assert.Equal(5UL, reopened.ClockMin(t!));
            Assert.Equal(0, reopened.Push(t!, Keys, Ones(Keys.Length), new WorkerStamp(1, 5)).Applied);
            if (round == 0) await reopened.CheckpointAsync();
        }
    }

    /// <summary>
    /// Keys of the dropped range (now perhaps split in two) take a retry at clock 5 and no other key does; then every
    /// range is at 5.
    /// </summary>
    private static void AssertOnlyTheDroppedPositionsTakeClock5Again(ParamStore store, TableHandle t, uint w, ulong dropped)
    {
        var before = new StoreOptions { DataDirectory = "x" }.Ring;
        ulong[] inDropped = Array.FindAll(Keys, k => before.Tokens[before.RangeOf(t.RingHash, k)] == dropped);
        Assert.NotEmpty(inDropped);
        Assert.Equal(0UL, store.ClockMin(t));
        Assert.Equal(inDropped.Length, store.Push(t, Keys, Ones(Keys.Length), new WorkerStamp(w, 5)).Applied);
        Assert.Equal(5UL, store.ClockMin(t));
        Assert.Equal(0, store.Push(t, Keys, Ones(Keys.Length), new WorkerStamp(w, 5)).Applied);
    }

    [Fact]
    public async Task TheSameRangesAgainChangeNothingAndATableMadeAfterAChangeHasTheNewRanges()
    {
        using ParamStore store = _dir.Open();
        Ring next = Changed(store.Ranges);
        await store.SetRanges(next);
        await store.SetRanges(new Ring(next.Tokens.ToArray()));
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        Assert.Equal(Keys.Length, store.Push(t, Keys, Ones(Keys.Length), new WorkerStamp(w, 2)).Applied);
        Assert.Equal(2UL, store.ClockMin(t));
        // Transfer works on the new tokens: a range that exists only since the change can be copied and dropped.
        ulong added = next.Tokens.ToArray().First(token => !new StoreOptions { DataDirectory = "x" }.Ring.Tokens.Contains(token));
        using (var copy = store.CopyRange(t, added)) Assert.True(copy.TryReadNext(out _));
        await store.DropRange(t, added).Durable;
        Assert.Equal(0UL, store.ClockMin(t));
    }

    [Fact]
    public async Task ACopyStartedBeforeTheRangesChangeFailsAndStartsAgainUnderTheNewOnes()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        store.Push(t, Keys, Ones(Keys.Length));
        // The range the change leaves alone (tokens 15…55) with the most keys, copied one record per batch.
        Ring before = store.Ranges;
        ulong token = before.Tokens[15..55].ToArray().MaxBy(tok => Array.FindAll(Keys, k => before.Tokens[before.RangeOf(t.RingHash, k)] == tok).Length);
        using var copy = store.CopyRange(t, token, maxBatchBytes: 44);
        Assert.True(copy.TryReadNext(out _));
        await store.SetRanges(Changed(store.Ranges));
        Assert.Contains("ranges changed", Assert.Throws<InvalidOperationException>(() => copy.TryReadNext(out _)).Message);
        using var again = store.CopyRange(t, token);
        Assert.True(again.TryReadNext(out ReadOnlyMemory<byte> batch));
        Assert.True(Transfer.RecordBatch.TryParse(batch.Span, out var records, out _));
        Assert.Equal(Array.FindAll(Keys, k => store.Ranges.Tokens[store.Ranges.RangeOf(t.RingHash, k)] == token), records.Keys.ToArray());
    }

    [Fact]
    public async Task AHeldRangesClockMovesOnlyWithReplicatedRecordsUntilItIsServedAcrossARestart()
    {
        using var primaryDir = new TestStore();
        ulong held;
        ulong[] inHeld, others;
        using (ParamStore primary = primaryDir.Open(), backup = _dir.Open())
        {
            TableHandle tp = TestStore.Create(primary, "t", TestStore.Schema(1)), tb = TestStore.Create(backup, "t", TestStore.Schema(1));
            uint w = primary.RegisterWorker("w", [], 60_000).Id;
            Assert.Equal(w, backup.RegisterWorker("w", [], 60_000).Id);
            held = backup.Ranges.Tokens[backup.Ranges.RangeOf(tb.RingHash, Keys[0])];
            inHeld = Array.FindAll(Keys, k => backup.Ranges.Tokens[backup.Ranges.RangeOf(tb.RingHash, k)] == held);
            others = Array.FindAll(Keys, k => Array.IndexOf(inHeld, k) < 0);
            // The backup serves every range but one, which it holds for the primary.
            await backup.SetRanges(backup.Ranges, [.. backup.Ranges.Tokens.ToArray().Where(t => t != held)]);
            Assert.False(backup.Serves(held));
            Assert.True(backup.Serves(backup.Ranges.Tokens[backup.Ranges.RangeOf(tb.RingHash, others[0])]));

            // A push to the backup's own ranges advances those alone; consistent pulls wait on them alone.
            Assert.Equal(others.Length, backup.Push(tb, others, Ones(others.Length), new WorkerStamp(w, 4)).Applied);
            Assert.Equal(4UL, backup.ClockMin(tb));
            // The held range moves with what the primary ships: its rows and its clock 2.
            primary.Push(tp, inHeld, Ones(inHeld.Length), new WorkerStamp(w, 2));
            var shipped = new System.Buffers.ArrayBufferWriter<byte>();
            primary.ReadRecords(tp, held, inHeld, shipped);
            await backup.ApplyRecords(tb, shipped.WrittenSpan);
            Assert.Equal(4UL, backup.ClockMin(tb));

            // Promoted: the held range is served now, its clock 2 counts, and retries are judged by it.
            await backup.SetRanges(backup.Ranges);
            Assert.True(backup.Serves(held));
            Assert.Equal(2UL, backup.ClockMin(tb));
            Assert.Equal(0, backup.Push(tb, inHeld, Ones(inHeld.Length), new WorkerStamp(w, 2)).Applied);
            // Clock 3 is new to the promoted range only.
            Assert.Equal(inHeld.Length, backup.Push(tb, Keys, Ones(Keys.Length), new WorkerStamp(w, 3)).Applied);
            await backup.SetRanges(backup.Ranges, [.. backup.Ranges.Tokens.ToArray().Where(t => t != held)]);   // held again, for the restart
        }
        using ParamStore reopened = _dir.Open();
        Assert.False(reopened.Serves(held));
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        Assert.Equal(4UL, reopened.ClockMin(t!));
        Assert.Equal(Enumerable.Repeat(2f, inHeld.Length), TestStore.Pull(reopened, t!, inHeld));
    }

    [Fact]
    public async Task APushSlicedAgainstOlderRangesIsRefusedWholeAndMovesNoClock()
    {
        using ParamStore store = _dir.Open();
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(1));
        uint w = store.RegisterWorker("w", [], 60_000).Id;
        ulong held = store.Ranges.Tokens[store.Ranges.RangeOf(t.RingHash, Keys[0])];
        ulong[] inHeld = Array.FindAll(Keys, k => store.Ranges.Tokens[store.Ranges.RangeOf(t.RingHash, k)] == held);
        ulong[] others = Array.FindAll(Keys, k => Array.IndexOf(inHeld, k) < 0);
        await store.SetRanges(store.Ranges, [.. store.Ranges.Tokens.ToArray().Where(token => token != held)]);
        long sliced = store.RangesVersion;
        Assert.Equal(others.Length, store.Push(t, others, Ones(others.Length), new WorkerStamp(w, 1), sliced).Applied);

        // The same ranges again change nothing, and the version with them.
        await store.SetRanges(store.Ranges, [.. store.Ranges.Tokens.ToArray().Where(token => token != held)]);
        Assert.Equal(sliced, store.RangesVersion);

        // A failover: the held range is served now. A push (and a tick) sliced before it are refused whole: had the
        // tick gone in, the promoted range would count clock 2 without the rows its primary was sent.
        await store.SetRanges(store.Ranges);
        Assert.NotEqual(sliced, store.RangesVersion);
        Assert.Equal(PushStatus.RangesChanged, store.Push(t, others, Ones(others.Length), new WorkerStamp(w, 2), sliced).Status);
        Assert.Equal(PushStatus.RangesChanged, store.PushRange(t, others[0], 1, Ones(1), new WorkerStamp(w, 2), sliced).Status);
        Assert.Equal(PushStatus.RangesChanged, store.Tick(t, new WorkerStamp(w, 2), sliced).Status);
        Assert.Equal(PushStatus.RangesChanged, store.Push(t, others, Ones(others.Length), default, sliced).Status);   // unclocked too
        Assert.Equal(Enumerable.Repeat(1f, others.Length), TestStore.Pull(store, t, others));
        Assert.Equal(0UL, store.ClockMin(t));   // the promoted range never saw a clock

        // The retry, sliced by the new ranges, applies everywhere it is new: the promoted range takes its keys.
        Assert.Equal(Keys.Length, store.Push(t, Keys, Ones(Keys.Length), new WorkerStamp(w, 2), store.RangesVersion).Applied);
        Assert.Equal(2UL, store.ClockMin(t));
        Assert.Equal(Enumerable.Repeat(1f, inHeld.Length), TestStore.Pull(store, t, inHeld));
    }
}
