using ParamDb.Protocol;

namespace ParamDb.Protocol.Tests;

/// <summary>
/// Golden bytes of the KV block (docs/wire-format.md), written out by hand from the layout, not produced by the
/// writer. Clients in other languages are checked against the same bytes, so these cases may only grow:
/// never edit or delete one, add a new one.
/// </summary>
public sealed class KvBlockGoldenTests
{
    // Explicit keys {1, 0x0102030405060708}, dim 2, rows [1, 2] and [-0.5, 0.25]: a push.
    private const string ExplicitWithValues =
        "50 44 42 31" + // magic "PDB1"
        "01 00" +       // version 1
        "02 00" +       // flags VALUES
        "02 00 00 00" + // dim 2
        "00 00 00 00" + // reserved
        "02 00 00 00 00 00 00 00" + // count 2
        "01 00 00 00 00 00 00 00" + // key 1
        "08 07 06 05 04 03 02 01" + // key 0x0102030405060708, little-endian
        "00 00 80 3F" + "00 00 00 40" + // 1.0f, 2.0f
        "00 00 00 BF" + "00 00 80 3E";  // -0.5f, 0.25f

    // Dense range first = 4096, count 3, dim 1, values 1, 2, 3: a push of a range.
    private const string RangeWithValues =
        "50 44 42 31" + "01 00" +
        "03 00" +       // flags RANGE | VALUES
        "01 00 00 00" + // dim 1
        "00 00 00 00" +
        "03 00 00 00 00 00 00 00" + // count 3
        "00 10 00 00 00 00 00 00" + // first 4096
        "00 00 80 3F" + "00 00 00 40" + "00 00 40 40"; // 1.0f, 2.0f, 3.0f

    // Explicit keys {7, 2^40}, dim 64, no values: a pull request.
    private const string PullRequest =
        "50 44 42 31" + "01 00" +
        "00 00" +       // flags: none
        "40 00 00 00" + // dim 64
        "00 00 00 00" +
        "02 00 00 00 00 00 00 00" + // count 2
        "07 00 00 00 00 00 00 00" + // key 7
        "00 00 00 00 00 01 00 00";  // key 2^40

    // Dense range first = 2^64 - 2, count 2, dim 0, no values: a range pull that ends exactly at 2^64 - 1.
    private const string RangePullAtTop =
        "50 44 42 31" + "01 00" +
        "01 00" +       // flags RANGE
        "00 00 00 00" + // dim 0: "whatever the table has"
        "00 00 00 00" +
        "02 00 00 00 00 00 00 00" + // count 2
        "FE FF FF FF FF FF FF FF";  // first 2^64 - 2

    // No rows at all: the smallest valid block, 24 bytes.
    private const string EmptyPullRequest =
        "50 44 42 31" + "01 00" + "00 00" + "08 00 00 00" + "00 00 00 00" + "00 00 00 00 00 00 00 00";

    internal static byte[] Hex(string spaced) => Convert.FromHexString(spaced.Replace(" ", ""));

    [Fact]
    public void WriterProducesGoldenBytesForExplicitKeysWithValues()
    {
        ulong[] keys = [1, 0x0102030405060708];
        float[] values = [1f, 2f, -0.5f, 0.25f];
        var buffer = new byte[KvBlockWriter.SizeOf(range: false, keys.Length, dim: 2, values: true)];

        int written = KvBlockWriter.Write(buffer, keys, values, dim: 2, withValues: true);

        Assert.Equal(buffer.Length, written);
        Assert.Equal(Hex(ExplicitWithValues), buffer);
    }

    [Fact]
    public void WriterProducesGoldenBytesForRangeWithValues()
    {
        float[] values = [1f, 2f, 3f];
        var buffer = new byte[KvBlockWriter.SizeOf(range: true, count: 3, dim: 1, values: true)];

        int written = KvBlockWriter.WriteRange(buffer, first: 4096, count: 3, values, dim: 1, withValues: true);

        Assert.Equal(buffer.Length, written);
        Assert.Equal(Hex(RangeWithValues), buffer);
    }

    [Fact]
    public void WriterProducesGoldenBytesForPullRequest()
    {
        ulong[] keys = [7, 1UL << 40];
        var buffer = new byte[KvBlockWriter.SizeOf(range: false, keys.Length, dim: 64, values: false)];

        int written = KvBlockWriter.Write(buffer, keys, default, dim: 64, withValues: false);

        Assert.Equal(buffer.Length, written);
        Assert.Equal(Hex(PullRequest), buffer);
    }

    [Fact]
    public void WriterProducesGoldenBytesForRangePullEndingAtTopKey()
    {
        var buffer = new byte[KvBlockWriter.SizeOf(range: true, count: 2, dim: 0, values: false)];

        int written = KvBlockWriter.WriteRange(buffer, first: ulong.MaxValue - 1, count: 2, default, dim: 0, withValues: false);

        Assert.Equal(buffer.Length, written);
        Assert.Equal(Hex(RangePullAtTop), buffer);
    }

    [Fact]
    public void WriterProducesGoldenBytesForEmptyPullRequest()
    {
        var buffer = new byte[KvBlockWriter.SizeOf(range: false, count: 0, dim: 8, values: false)];

        int written = KvBlockWriter.Write(buffer, [], default, dim: 8, withValues: false);

        Assert.Equal(KvBlock.HeaderSize, written);
        Assert.Equal(Hex(EmptyPullRequest), buffer);
    }

    [Fact]
    public void ExplicitGoldenParsesBackToItsKeysAndValues()
    {
        byte[] block = Hex(ExplicitWithValues);

        Assert.True(KvBlock.TryParse(block, KvExpect.Values, maxKeys: 10, out var kv, out var error), error.Detail);

        Assert.True(error.IsNone);
        Assert.Equal(KvFlags.Values, kv.Flags);
        Assert.False(kv.IsRange);
        Assert.True(kv.HasValues);
        Assert.Equal(2, kv.Dim);
        Assert.Equal(2, kv.Count);
        Assert.Equal(block.Length, kv.Length);
        Assert.Equal(40, kv.ValuesOffset);
        Assert.Equal(new ulong[] { 1, 0x0102030405060708 }, kv.Keys(block).ToArray());
        Assert.Equal(0x0102030405060708UL, kv.KeyAt(block, 1));
        Assert.Equal(0x0102030405060708UL, kv.LastKey(block));
        Assert.Equal(new[] { 1f, 2f, -0.5f, 0.25f }, kv.Values(block).ToArray());
    }

    [Fact]
    public void RangeGoldenParsesBackToItsKeysAndValues()
    {
        byte[] block = Hex(RangeWithValues);

        Assert.True(KvBlock.TryParse(block, KvExpect.Values, maxKeys: 10, out var kv, out var error), error.Detail);

        Assert.True(kv.IsRange);
        Assert.Equal(KvFlags.Range | KvFlags.Values, kv.Flags);
        Assert.Equal(4096UL, kv.First);
        Assert.Equal(3, kv.Count);
        Assert.Equal(1, kv.Dim);
        Assert.Equal(32, kv.ValuesOffset);
        Assert.True(kv.Keys(block).IsEmpty);
        Assert.Equal(4097UL, kv.KeyAt(block, 1));
        Assert.Equal(4098UL, kv.LastKey(block));
        Assert.Equal(new[] { 1f, 2f, 3f }, kv.Values(block).ToArray());
    }

    [Fact]
    public void PullRequestGoldenParsesBackWithoutValues()
    {
        byte[] block = Hex(PullRequest);

        Assert.True(KvBlock.TryParse(block, KvExpect.NoValues, maxKeys: 10, out var kv, out var error), error.Detail);

        Assert.False(kv.HasValues);
        Assert.Equal(64, kv.Dim);
        Assert.Equal(new ulong[] { 7, 1UL << 40 }, kv.Keys(block).ToArray());
        Assert.True(kv.Values(block).IsEmpty);
    }

    [Fact]
    public void RangeEndingExactlyAtTheTopKeyIsAccepted()
    {
        byte[] block = Hex(RangePullAtTop);

        Assert.True(KvBlock.TryParse(block, KvExpect.NoValues, maxKeys: 10, out var kv, out var error), error.Detail);

        Assert.Equal(ulong.MaxValue, kv.LastKey(block));
    }

    [Fact]
    public void EmptyBlockParsesWithNoRows()
    {
        byte[] block = Hex(EmptyPullRequest);

        Assert.True(KvBlock.TryParse(block, KvExpect.NoValues, maxKeys: 0, out var kv, out var error), error.Detail);

        Assert.Equal(0, kv.Count);
        Assert.Equal(0UL, kv.LastKey(block));
        Assert.Equal(KvBlock.HeaderSize, kv.Length);
    }

    [Theory]
    [InlineData(ExplicitWithValues)]
    [InlineData(RangeWithValues)]
    [InlineData(PullRequest)]
    [InlineData(RangePullAtTop)]
    [InlineData(EmptyPullRequest)]
    public void EveryGoldenIsAcceptedWhenEitherFormIsExpected(string golden)
    {
        Assert.True(KvBlock.TryParse(Hex(golden), KvExpect.Any, maxKeys: 10, out _, out var error), error.Detail);
    }

    [Fact]
    public void WriterRejectsValuesThatDoNotMatchKeysTimesDim()
    {
        var buffer = new byte[1024];

        Assert.Throws<ArgumentException>(() => KvBlockWriter.Write(buffer, [1, 2], new float[3], dim: 2, withValues: true));
        Assert.Throws<ArgumentException>(() => KvBlockWriter.WriteRange(buffer, 0, count: 2, new float[5], dim: 2, withValues: true));
    }

    [Fact]
    public void SizeOfMatchesTheLayout()
    {
        Assert.Equal(24 + 8 * 10 + 4 * 10 * 64, KvBlockWriter.SizeOf(range: false, count: 10, dim: 64, values: true));
        Assert.Equal(24 + 8 + 4 * 10 * 64, KvBlockWriter.SizeOf(range: true, count: 10, dim: 64, values: true));
        Assert.Equal(24 + 8 * 10, KvBlockWriter.SizeOf(range: false, count: 10, dim: 64, values: false));
        Assert.Equal(32, KvBlockWriter.SizeOf(range: true, count: 10, dim: 64, values: false));
    }
}
