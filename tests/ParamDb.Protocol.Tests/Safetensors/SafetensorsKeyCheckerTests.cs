using System.Runtime.InteropServices;
using ParamDb.Protocol.Safetensors;

namespace ParamDb.Protocol.Tests.Safetensors;

/// <summary>The keys section of an import checked chunk by chunk, as it streams in.</summary>
public sealed class SafetensorsKeyCheckerTests
{
    [Fact]
    public void AscendingKeysAreAcceptedAcrossChunks()
    {
        var checker = new SafetensorsKeyChecker(maxKey: null);

        Assert.True(checker.TryAccept([0, 1, 7], out var error), error.Detail);
        Assert.True(checker.TryAccept([], out error), error.Detail);
        Assert.True(checker.TryAccept([8], out error), error.Detail);
        Assert.True(checker.TryAccept([1UL << 40, ulong.MaxValue], out error), error.Detail);

        Assert.True(error.IsNone);
        Assert.Equal(6, checker.Count);
        Assert.Equal(ulong.MaxValue, checker.LastKey);
    }

    [Fact]
    public void DuplicateAtAChunkBoundaryIsRejected()
    {
        var checker = new SafetensorsKeyChecker(null);
        Assert.True(checker.TryAccept([1, 2], out _));

        Assert.False(checker.TryAccept([2, 3], out var error));

        Assert.Equal(ProblemCodes.DuplicateKeys, error.Code);
        Assert.Equal(400, error.Status);
        Assert.Equal("Key 2 appears twice (rows 1 and 2); keys must be unique.", error.Detail);
    }

    [Fact]
    public void KeyZeroTwiceAcrossChunksIsADuplicate()
    {
        // The first key may be 0; the second chunk's 0 must still be compared with it.
        var checker = new SafetensorsKeyChecker(null);
        Assert.True(checker.TryAccept([0], out _));

        Assert.False(checker.TryAccept([0], out var error));

        Assert.Equal(ProblemCodes.DuplicateKeys, error.Code);
        Assert.Contains("rows 0 and 1", error.Detail);
    }

    [Fact]
    public void DescendingAtAChunkBoundaryIsRejected()
    {
        var checker = new SafetensorsKeyChecker(null);
        Assert.True(checker.TryAccept([1, 5], out _));

        Assert.False(checker.TryAccept([4, 6], out var error));

        Assert.Equal(ProblemCodes.UnsortedKeys, error.Code);
        Assert.Equal("Keys must be strictly ascending: row 2 has key 4 after 5.", error.Detail);
    }

    [Fact]
    public void DisorderInsideAChunkNamesItsRowInTheSection()
    {
        var checker = new SafetensorsKeyChecker(null);
        Assert.True(checker.TryAccept([1, 2, 3], out _));

        Assert.False(checker.TryAccept([10, 20, 20], out var error));

        Assert.Equal(ProblemCodes.DuplicateKeys, error.Code);
        Assert.Contains("rows 4 and 5", error.Detail);
    }

    [Fact]
    public void KeyAtMaxKeyIsRejectedAndBelowIsNot()
    {
        var checker = new SafetensorsKeyChecker(maxKey: 10);
        Assert.True(checker.TryAccept([0, 9], out var error), error.Detail);

        Assert.False(checker.TryAccept([10], out error));

        Assert.Equal(ProblemCodes.KeyOutOfRange, error.Code);
        Assert.Equal("Row 2 has key 10; the table's maxKey is 10, so keys must be below it.", error.Detail);
    }

    [Fact]
    public void FirstKeyPastMaxKeyInAChunkIsNamed()
    {
        var checker = new SafetensorsKeyChecker(maxKey: 100);
        Assert.True(checker.TryAccept([5], out _));

        Assert.False(checker.TryAccept([50, 99, 100, 101], out var error));

        Assert.Equal(ProblemCodes.KeyOutOfRange, error.Code);
        Assert.StartsWith("Row 3 has key 100;", error.Detail);
    }

    [Fact]
    public void DisorderIsReportedBeforeMaxKey()
    {
        var checker = new SafetensorsKeyChecker(maxKey: 10);

        Assert.False(checker.TryAccept([20, 3], out var error));

        Assert.Equal(ProblemCodes.UnsortedKeys, error.Code);
    }

    [Fact]
    public void RejectedChunkLeavesTheCheckerAsBefore()
    {
        var checker = new SafetensorsKeyChecker(maxKey: 10);
        Assert.True(checker.TryAccept([1, 2], out _));

        Assert.False(checker.TryAccept([3, 4, 4], out _));
        Assert.False(checker.TryAccept([5, 11], out _));

        Assert.Equal(2, checker.Count);
        Assert.Equal(2UL, checker.LastKey);
        Assert.True(checker.TryAccept([3], out var error), error.Detail);
    }

    [Fact]
    public void DefaultCheckerHasNoBound()
    {
        SafetensorsKeyChecker checker = default;

        Assert.True(checker.TryAccept([0, ulong.MaxValue], out var error), error.Detail);
        Assert.Equal(2, checker.Count);
    }

    [Fact]
    public void KeysSectionOfAFileChecksInChunksOfAnySize()
    {
        // 1,000 ascending keys as a file holds them, checked 1, 7 and 64 keys at a time.
        var keys = new ulong[1000];
        for (int i = 0; i < keys.Length; i++) keys[i] = 3UL * (ulong)i + 1;
        byte[] section = MemoryMarshal.AsBytes(keys.AsSpan()).ToArray();

        foreach (int chunk in new[] { 1, 7, 64 })
        {
            var checker = new SafetensorsKeyChecker(maxKey: 3000);
            for (int offset = 0; offset < section.Length; offset += chunk * 8)
            {
                var bytes = section.AsSpan(offset, Math.Min(chunk * 8, section.Length - offset));
                Assert.True(checker.TryAccept(MemoryMarshal.Cast<byte, ulong>(bytes), out var error), error.Detail);
            }
            Assert.Equal(1000, checker.Count);
            Assert.Equal(2998UL, checker.LastKey);
        }
    }
}
