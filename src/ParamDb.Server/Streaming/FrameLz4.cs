using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ParamDb.Protocol;
using ParamDb.Server.Http;

namespace ParamDb.Server.Streaming;

/// <summary>
/// LZ4 (frame format, K4os) for stream payloads: a request's KV block arrives as one LZ4 frame when its flag
/// bit0 is set, and its pull reply goes back the same way. The payload is already in memory, so both sides
/// work span to span; no stream adapter.
/// </summary>
internal static class FrameLz4
{
    /// <summary>
    /// Inflates <paramref name="compressed"/> into a new pooled buffer of at most <paramref name="maxBytes"/>.
    /// Inflation stops one byte past the limit, so a decompression bomb costs at most the limit in memory.
    /// </summary>
    /// <returns>The KV block, or null with 413 <c>body_too_large</c> or 400 <c>bad_compression</c>.</returns>
    public static PooledBuffer? Inflate(ReadOnlyMemory<byte> compressed, long maxBytes, out ProtocolError error)
    {
        // Dense floats do not shrink and sparse gradients shrink to ~18 % (docs/design.md#facts-measured-on-the-development-machine): start at 4× the
        // wire size and double, which copies at most as much again as the block.
        var plain = new PooledBuffer((int)Math.Min(maxBytes, Math.Max(64 * 1024, compressed.Length * 4L)));
        try
        {
            using var decoder = LZ4Frame.Decode(compressed, 0);
            while (true)
            {
                int end = (int)Math.Min(plain.Capacity, maxBytes);
                if (plain.Length == end)
                {
                    if (end >= maxBytes)
                    {
                        if (decoder.ReadOneByte() < 0) break;
                        plain.Dispose();
                        error = new ProtocolError(413, ProblemCodes.BodyTooLarge,
                            $"The frame's LZ4 block inflates past {maxBytes} bytes (--max-body-size); it was not inflated further.");
                        return null;
                    }
                    plain.EnsureCapacity((int)Math.Min(maxBytes, (long)plain.Capacity * 2));
                    continue;
                }
                int read = decoder.ReadManyBytes(plain.Array.AsSpan(plain.Length, end - plain.Length), interactive: false);
                if (read == 0) break;
                plain.Length += read;
            }
            error = default;
            return plain;
        }
        catch (Exception e) when (Lz4Input.IsCorrupt(e))
        {
            plain.Dispose();
            error = new ProtocolError(400, ProblemCodes.BadCompression,
                e is EndOfStreamException
                    ? "The frame's LZ4 data ends early or has bytes after its end: send exactly one LZ4 frame."
                    : $"The frame's KV block is flagged LZ4 (flags bit0) but is not a valid LZ4 frame: {e.Message}");
            return null;
        }
    }

    /// <summary>
    /// Compresses <paramref name="payload"/> at the fastest level into a new buffer after
    /// <paramref name="headroom"/> bytes (where the reply header goes). HC levels are never used on this path:
    /// they cost ~20× the time for little gain on floats.
    /// </summary>
    public static PooledBuffer Deflate(ReadOnlySpan<byte> payload, int headroom)
    {
        // Worst case: LZ4's bound per block plus the frame's header, block sizes and end mark (≤ 32 bytes
        // and 4 per 64 KiB block), so the writer never has to grow.
        long bound = headroom + LZ4Codec.MaximumOutputSize(payload.Length) + 32 + 4L * (payload.Length / 65536 + 1);
        var frame = new PooledBuffer((int)Math.Min(int.MaxValue, bound)) { Length = headroom };
        try
        {
            LZ4Frame.Encode(payload, new PooledBufferWriter(frame), LZ4Level.L00_FAST);
            return frame;
        }
        catch
        {
            frame.Dispose();
            throw;
        }
    }
}
