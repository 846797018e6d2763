using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace ParamDb.Storage.Durability;

/// <summary>
/// CRC-32C (Castagnoli), with the hardware instruction where there is one (SSE 4.2, ARMv8): ~8 bytes per cycle,
/// so checking a 1 GiB checkpoint costs about as much as reading it from the page cache.
/// </summary>
internal static class Crc32C
{
    /// <summary>Continues <paramref name="crc"/> over <paramref name="data"/> (start from <c>~0u</c>, finish with <c>~</c>).</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong word in words) crc = BitOperations.Crc32C(crc, BitConverter.IsLittleEndian ? word : BinaryPrimitives.ReverseEndianness(word));
        foreach (byte b in data[(words.Length * sizeof(ulong))..]) crc = BitOperations.Crc32C(crc, b);
        return crc;
    }

    /// <summary>The CRC-32C and length of a whole file, read past the page cache (<see cref="DirectFile"/>).</summary>
    public static (uint Crc, long Length) OfFile(string path) => OfFile(path, long.MaxValue);

    /// <summary>CRC-32C of the file's first <paramref name="limit"/> bytes (of all of it when shorter), and how many that was.</summary>
    /// <remarks>Direct reads: a checkpoint's files were written past the page cache, and reading them through it
    /// would cost what writing them there did (see <see cref="DirectFile"/>).</remarks>
    public static (uint Crc, long Length) OfFile(string path, long limit)
    {
        using DirectFile file = DirectFile.Open(path, FileMode.Open, FileAccess.Read);
        AlignedBuffer buffer = AlignedBuffer.Rent();
        try
        {
            uint crc = ~0u;
            long length = 0;
            int read;
            // Whole aligned pieces, so every read but the last can go direct; only the CRC stops at the limit.
            while (length < limit && (read = file.ReadFull(buffer.Span, length)) > 0)
            {
                int counted = (int)Math.Min(read, limit - length);
                crc = Append(crc, buffer.Span[..counted]);
                length += counted;
                if (read < buffer.Length) break;
            }
            return (~crc, length);
        }
        finally
        {
            AlignedBuffer.Return(buffer);
        }
    }
}
