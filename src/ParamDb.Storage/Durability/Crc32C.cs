using System.Buffers;
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

    /// <summary>The CRC-32C and length of a whole file, read in 1 MiB pieces.</summary>
    public static (uint Crc, long Length) OfFile(string path) => OfFile(path, long.MaxValue);

    /// <summary>CRC-32C of the file's first <paramref name="limit"/> bytes (of all of it when shorter), and how many that was.</summary>
    public static (uint Crc, long Length) OfFile(string path, long limit)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            uint crc = ~0u;
            long length = 0;
            int read;
            while (length < limit && (read = file.Read(buffer, 0, (int)Math.Min(buffer.Length, limit - length))) > 0)
            {
                crc = Append(crc, buffer.AsSpan(0, read));
                length += read;
            }
            return (~crc, length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
