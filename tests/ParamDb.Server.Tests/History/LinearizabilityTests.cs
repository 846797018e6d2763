using ParamDb.Testing.History;
using Xunit;

namespace ParamDb.Server.Tests.History;

/// <summary>
/// The history checker the fault tests rely on: it must accept every history a correct add register can produce,
/// and reject the shapes of the bugs it is there to catch (a lost acknowledged push, a value that goes back, a
/// stale read, a push applied twice, a refused push that took effect).
/// </summary>
public sealed class LinearizabilityTests
{
    private static Operation Push(int client, long start, long end, long delta, Outcome outcome = Outcome.Ok) => Operation.Push(client, start, end, delta, outcome);

    private static Operation Pull(int client, long start, long end, long value) => Operation.Pull(client, start, end, value);

    [Fact]
    public void AnEmptyHistoryAndOneOfSequentialOperationsAreLinearizable()
    {
        Assert.True(Linearizability.Check([]).IsLinearizable);
        Assert.True(Linearizability.Check([Pull(0, 0, 1, 0), Push(0, 2, 3, 5), Pull(0, 4, 5, 5), Push(0, 6, 7, 2), Pull(0, 8, 9, 7)]).IsLinearizable);
        Assert.True(Linearizability.Check([Pull(0, 0, 1, 10), Push(0, 2, 3, 1), Pull(0, 4, 5, 11)], initial: 10).IsLinearizable);
    }

    [Fact]
    public void AReadOfAValueNoOrderCanProduceIsRejected()
    {
        Verdict verdict = Linearizability.Check([Push(0, 0, 1, 1), Push(1, 0, 1, 2), Pull(2, 2, 3, 4)]);
        Assert.False(verdict.IsLinearizable);
        Assert.Contains("pull = 4", verdict.Explanation);
    }

    [Fact]
    public void AReadConcurrentWithAPushMaySeeItOrNot()
    {
        Assert.True(Linearizability.Check([Push(0, 0, 10, 1), Pull(1, 2, 3, 0)]).IsLinearizable);
        Assert.True(Linearizability.Check([Push(0, 0, 10, 1), Pull(1, 2, 3, 1)]).IsLinearizable);
        // Operations that touch in time count as concurrent.
        Assert.True(Linearizability.Check([Push(0, 0, 5, 1), Pull(1, 5, 6, 0)]).IsLinearizable);
    }

    [Fact]
    public void AStaleReadAfterAnAcknowledgedPushIsRejected()
    {
        // The push was acknowledged at 2; a read sent at 3 must see it (a lost push, or a read from a stale copy).
        Assert.False(Linearizability.Check([Push(0, 0, 2, 1), Pull(1, 3, 4, 0)]).IsLinearizable);
    }

    [Fact]
    public void AValueThatGoesBackIsRejected()
    {
        // Two concurrent pushes; one reader sees 3, a later reader sees 1: the push of 2 was lost after it was seen.
        Assert.False(Linearizability.Check([Push(0, 0, 10, 1), Push(1, 0, 10, 2), Pull(2, 11, 12, 3), Pull(3, 13, 14, 1)]).IsLinearizable);
        // Even while the pushes are still in flight: once a value was read, a later read cannot undo it.
        Assert.False(Linearizability.Check([Push(0, 0, 100, 1), Pull(1, 1, 2, 1), Pull(1, 3, 4, 0)]).IsLinearizable);
    }

    [Fact]
    public void APushAppliedTwiceIsRejected()
    {
        Assert.False(Linearizability.Check([Push(0, 0, 1, 5), Pull(0, 2, 3, 10)]).IsLinearizable);
    }

    [Fact]
    public void APushWithoutAnAnswerMayHaveHappenedAtAnyTimeAfterItsStartOrNever()
    {
        Assert.True(Linearizability.Check([Push(0, 0, 0, 1, Outcome.Unknown), Pull(1, 5, 6, 0), Pull(1, 7, 8, 0)]).IsLinearizable);
        Assert.True(Linearizability.Check([Push(0, 0, 0, 1, Outcome.Unknown), Pull(1, 5, 6, 0), Pull(1, 7, 8, 1)]).IsLinearizable);
        // But not before it was sent, and not undone once seen.
        Assert.False(Linearizability.Check([Pull(1, 0, 1, 1), Push(0, 2, 0, 1, Outcome.Unknown)]).IsLinearizable);
        Assert.False(Linearizability.Check([Push(0, 0, 0, 1, Outcome.Unknown), Pull(1, 5, 6, 1), Pull(1, 7, 8, 0)]).IsLinearizable);
    }

    [Fact]
    public void ARefusedPushMustNotTakeEffectAndAPullWithoutAnAnswerConstrainsNothing()
    {
        Assert.False(Linearizability.Check([Push(0, 0, 1, 1, Outcome.Failed), Pull(1, 2, 3, 1)]).IsLinearizable);
        Assert.True(Linearizability.Check([Push(0, 0, 1, 1, Outcome.Failed), Pull(1, 2, 3, 0)]).IsLinearizable);
        Assert.True(Linearizability.Check([Push(0, 0, 1, 1), new Operation(1, 2, 3, OpKind.Pull, 0, 42, Outcome.Unknown)]).IsLinearizable);
    }

    [Fact]
    public void TheFinalValueMustBeTheAcknowledgedSumPlusASubsetOfTheUnanswered()
    {
        Operation[] pushes = [Push(0, 0, 1, 1), Push(1, 0, 1, 10), Push(2, 0, 0, 100, Outcome.Unknown), Push(3, 0, 0, 1000, Outcome.Unknown)];
        foreach (long final in new long[] { 11, 111, 1011, 1111 })
            Assert.True(Linearizability.Check([.. pushes, Pull(0, 5, 6, final)]).IsLinearizable);
        foreach (long final in new long[] { 0, 1, 10, 100, 110, 1100, 1112 })
            Assert.False(Linearizability.Check([.. pushes, Pull(0, 5, 6, final)]).IsLinearizable);
    }

    [Fact]
    public void ALongHistoryOfACorrectRegisterWithOverlappingClientsPassesAndOneCorruptedReadFails()
    {
        // Four clients, one operation in flight each, over a register that applies each operation at a random
        // instant inside its interval: linearizable by construction.
        var rng = new Random(17);
        var history = new List<Operation>();
        var clocks = new long[4];
        var applied = new List<(long At, int Index)>();
        for (int i = 0; i < 4000; i++)
        {
            int client = rng.Next(4);
            long start = clocks[client] + rng.Next(1, 5);
            long end = start + rng.Next(1, 30);
            clocks[client] = end;
            bool push = rng.Next(3) > 0;
            history.Add(push ? Push(client, start, end, rng.Next(1, 4)) : Pull(client, start, end, 0));
            applied.Add((start + rng.NextInt64(end - start + 1), history.Count - 1));
        }
        applied.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Index.CompareTo(b.Index));
        long value = 0;
        foreach (var (_, index) in applied)
        {
            Operation op = history[index];
            if (op.Kind == OpKind.Push) value += op.Argument;
            else history[index] = op with { Result = value };
        }
        Assert.True(Linearizability.Check(history).IsLinearizable);

        int victim = history.FindLastIndex(op => op.Kind == OpKind.Pull);
        history[victim] = history[victim] with { Result = value + 1000 };
        Assert.False(Linearizability.Check(history).IsLinearizable);
    }

    [Fact]
    public void TheRecorderKeepsEachKeysOperationsApartAndTimesThemInOrder()
    {
        var recorder = new HistoryRecorder();
        long start = HistoryRecorder.Now();
        recorder.Push(0, 7, start, 3, Outcome.Ok);
        recorder.Pull(1, 7, HistoryRecorder.Now(), 3);
        recorder.Push(0, 8, HistoryRecorder.Now(), 1, Outcome.Unknown);
        Assert.Equal(3, recorder.Count);
        Assert.Equal(new ulong[] { 7, 8 }, recorder.Keys.Order());
        IReadOnlyList<Operation> seven = recorder.Of(7);
        Assert.Equal(2, seven.Count);
        Assert.True(seven[0].Start <= seven[0].End && seven[0].End <= seven[1].Start);
        Assert.True(Linearizability.Check(seven).IsLinearizable);
        Assert.Empty(recorder.Of(9));
    }
}
