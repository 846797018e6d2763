using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ParamDb.Protocol;

namespace ParamDb.Client.Internal;

/// <summary>LZ4 frame encoding of request blocks, shared by the REST client and the stream.</summary>
internal static class Lz4Frames
{
    // The fast level only: it passes incompressible floats at ~17 GB/s, where HC would stall the push path.
    // (K4os 1.3.8 cannot write the frame's optional content size, so the frame does not carry it.)
    private static readonly LZ4EncoderSettings Settings = new() { CompressionLevel = LZ4Level.L00_FAST };

    /// <summary>
    /// LZ4-frames <paramref name="source"/> into a buffer rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/>
    /// (the caller returns it), after <paramref name="headroom"/> bytes left free for a frame header.
    /// </summary>
    /// <param name="source">The plain bytes.</param>
    /// <param name="headroom">Bytes reserved at the start of the returned buffer.</param>
    /// <param name="length">Bytes used, headroom included.</param>
    public static byte[] Encode(ReadOnlySpan<byte> source, int headroom, out int length)
    {
        // Incompressible 64 KiB blocks are stored as-is behind a 4-byte size; the frame adds ≤ 19 bytes of
        // header, a 4-byte end mark and a 4-byte checksum. So this bound never makes the writer grow.
        using var writer = new PooledArrayWriter(headroom + source.Length + (source.Length / 65_536 + 1) * 8 + 64);
        writer.GetSpan(headroom);
        writer.Advance(headroom);
        LZ4Frame.Encode(source, writer, Settings);
        return writer.Detach(out length);
    }
}
