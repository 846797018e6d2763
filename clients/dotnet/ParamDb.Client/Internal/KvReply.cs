using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using K4os.Compression.LZ4.Streams;
using ParamDb.Protocol;

namespace ParamDb.Client.Internal;

/// <summary>
/// Reads reply bodies: opens them (undoing <c>Content-Encoding: lz4</c>) and reads a pull reply's KV block
/// with its values going straight into the caller's memory.
/// </summary>
internal static class KvReply
{
    private static readonly LZ4DecoderSettings DecoderSettings = new();

    /// <summary>The reply body as a stream of plain bytes, decoding the LZ4 frame format when the server used it.</summary>
    public static async Task<Stream> OpenBodyAsync(HttpContent content, CancellationToken cancellationToken)
    {
        Stream body = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        string? encoding = null;
        foreach (string e in content.Headers.ContentEncoding)
        {
            if (encoding is not null) throw BadReply("it stacks several content encodings");
            encoding = e;
        }
        if (encoding is null || encoding.Equals("identity", StringComparison.OrdinalIgnoreCase)) return body;
        if (encoding.Equals(MediaTypes.Lz4Encoding, StringComparison.OrdinalIgnoreCase))
            return LZ4Stream.Decode(body, DecoderSettings, leaveOpen: false, interactive: false);
        throw BadReply($"it uses Content-Encoding {encoding}, which this client does not read");
    }

    /// <summary>
    /// Reads a pull reply for <paramref name="count"/> rows whose keys are <paramref name="keys"/> (explicit) or
    /// <paramref name="first"/>… (<paramref name="range"/>). With <paramref name="dim"/> &gt; 0 the values land in
    /// <paramref name="destination"/> (count × dim floats) and null is returned; with dim 0 the reply's dim is
    /// taken and a new array returned. The reply must mirror the request's key layout exactly.
    /// </summary>
    public static async Task<float[]?> ReadPullAsync(
        HttpContent content, bool range, ReadOnlyMemory<ulong> keys, ulong first, int count, int dim,
        Memory<float> destination, CancellationToken cancellationToken)
    {
        bool compressed = content.Headers.ContentEncoding.Count > 0;
        int keyBytes = range ? 8 : count * 8;
        long? contentLength = content.Headers.ContentLength;
        if (!compressed && dim > 0 && contentLength is { } announced)
        {
            long expected = KvBlockWriter.SizeOf(range, count, dim, values: true);
            if (announced != expected)
                throw BadReply($"it is {announced} bytes long; {count} rows of dim {dim} take {expected}");
        }

        await using Stream body = await OpenBodyAsync(content, cancellationToken).ConfigureAwait(false);
        byte[] head = ArrayPool<byte>.Shared.Rent(KvBlock.HeaderSize + keyBytes);
        float[]? result = null;
        try
        {
            await body.ReadExactlyAsync(head.AsMemory(0, KvBlock.HeaderSize + keyBytes), cancellationToken).ConfigureAwait(false);
            int replyDim = CheckHeader(head, range, count, dim);
            CheckKeys(head.AsSpan(KvBlock.HeaderSize, keyBytes), range, keys.Span, first);
            if (dim == 0)
            {
                result = count == 0 ? [] : new float[checked(count * replyDim)];
                destination = result;
            }
            if (!destination.IsEmpty)
            {
                using var bytes = new MemoryBytes<float>(destination);
                await body.ReadExactlyAsync(bytes.Memory, cancellationToken).ConfigureAwait(false);
            }
            // The block must end exactly here: one more byte is a reply longer than its header says.
            if (await body.ReadAsync(head.AsMemory(0, 1), cancellationToken).ConfigureAwait(false) != 0)
                throw BadReply("it is longer than its header says");
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The server's pull reply is shorter than its header says.", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(head);
        }
        return result;
    }

    /// <summary>Checks the 24-byte header against the request and returns the reply's dim.</summary>
    private static int CheckHeader(ReadOnlySpan<byte> header, bool range, int count, int dim)
    {
        if (!KvBlock.TryReadHeader(header, out KvFlags flags, out uint replyDim, out ulong replyCount, out ProtocolError error))
            throw BadReply(error.Detail.TrimEnd('.'));
        var expectedFlags = KvFlags.Values | (range ? KvFlags.Range : KvFlags.None);
        if (flags != expectedFlags)
            throw BadReply($"its flags are {flags}; a reply to this pull has {expectedFlags}");
        if (replyCount != (ulong)count)
            throw BadReply($"it has {replyCount} rows; {count} were asked for");
        if (dim > 0 && replyDim != (uint)dim)
            throw BadReply($"its rows have dim {replyDim}; the destination holds rows of {dim}");
        if (replyDim > TableSchema.MaxDim || (long)replyDim * count > Array.MaxLength)
            throw BadReply($"{count} rows of dim {replyDim} do not fit in one array");
        return (int)replyDim;
    }

    private static void CheckKeys(ReadOnlySpan<byte> replyKeys, bool range, ReadOnlySpan<ulong> keys, ulong first)
    {
        bool same = range
            ? BinaryPrimitives.ReadUInt64LittleEndian(replyKeys) == first
            : replyKeys.SequenceEqual(MemoryMarshal.AsBytes(keys));
        if (!same) throw BadReply("its keys are not the keys that were asked for");
    }

    private static InvalidDataException BadReply(string why) => new($"The server's pull reply is not a valid KV block: {why}.");
}
