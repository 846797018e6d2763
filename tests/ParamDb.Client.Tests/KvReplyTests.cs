using System.Buffers.Binary;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ParamDb.Client.Internal;
using ParamDb.Protocol;

namespace ParamDb.Client.Tests;

/// <summary>Reading pull replies without a server: values land in place, and a reply that does not mirror the request is refused.</summary>
public sealed class KvReplyTests
{
    private static readonly ulong[] Keys = [2, 9];

    private static byte[] Reply(ulong[] keys, float[] values, int dim)
    {
        var block = new byte[KvBlockWriter.SizeOf(range: false, keys.Length, dim, values: true)];
        KvBlockWriter.Write(block, keys, values, dim, withValues: true);
        return block;
    }

    private static byte[] Lz4(byte[] plain)
    {
        var packed = new MemoryStream();
        using (var encoder = LZ4Stream.Encode(packed, LZ4Level.L00_FAST, leaveOpen: true)) encoder.Write(plain);
        return packed.ToArray();
    }

    private static Task<float[]?> Read(byte[] body, float[] destination, int dim = 2, bool lz4 = false)
    {
        var content = new ByteArrayContent(lz4 ? Lz4(body) : body);
        if (lz4) content.Headers.ContentEncoding.Add("lz4");
        return KvReply.ReadPullAsync(content, range: false, Keys, 0, Keys.Length, dim, destination, CancellationToken.None);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ValuesLandInTheDestination(bool lz4)
    {
        var destination = new float[4];

        var result = await Read(Reply(Keys, [1, 2, 3, 4], dim: 2), destination, lz4: lz4);

        Assert.Null(result);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, destination);
    }

    [Fact]
    public async Task DimZeroTakesTheRepliesDimAndReturnsANewArray()
    {
        var result = await Read(Reply(Keys, [1, 2, 3, 4, 5, 6], dim: 3), [], dim: 0);

        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, result);
    }

    [Fact]
    public async Task ReplyWithOtherKeysIsRefused()
    {
        await Assert.ThrowsAsync<InvalidDataException>(() => Read(Reply([2, 10], [1, 2, 3, 4], dim: 2), new float[4]));
    }

    [Fact]
    public async Task ReplyWithAnotherDimIsRefused()
    {
        await Assert.ThrowsAsync<InvalidDataException>(() => Read(Reply(Keys, [1, 2, 3, 4, 5, 6], dim: 3), new float[4]));
    }

    [Fact]
    public async Task ReplyWithAnotherCountIsRefused()
    {
        await Assert.ThrowsAsync<InvalidDataException>(() => Read(Reply([2], [1, 2], dim: 2), new float[4]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TruncatedOrOverlongReplyIsRefused(bool lz4)
    {
        byte[] block = Reply(Keys, [1, 2, 3, 4], dim: 2);

        await Assert.ThrowsAsync<InvalidDataException>(() => Read(block[..^4], new float[4], lz4: lz4));
        await Assert.ThrowsAsync<InvalidDataException>(() => Read([.. block, 0, 0, 0, 0], new float[4], lz4: lz4));
    }

    [Fact]
    public async Task ReplyWithoutValuesIsRefused()
    {
        byte[] block = Reply(Keys, [1, 2, 3, 4], dim: 2);
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(6), (ushort)KvFlags.None);

        await Assert.ThrowsAsync<InvalidDataException>(() => Read(block, new float[4]));
    }

    [Fact]
    public async Task UnknownContentEncodingIsRefused()
    {
        var content = new ByteArrayContent(Reply(Keys, [1, 2, 3, 4], dim: 2));
        content.Headers.ContentEncoding.Add("br");

        await Assert.ThrowsAsync<InvalidDataException>(() =>
            KvReply.ReadPullAsync(content, false, Keys, 0, 2, 2, new float[4], CancellationToken.None));
    }
}
