using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ParamDb.Protocol;

/// <summary>Writes KV blocks (layout in <see cref="KvBlock"/>) into caller-owned buffers.</summary>
public static class KvBlockWriter
{
    /// <summary>Exact size of a block, in bytes.</summary>
    /// <param name="range">True for the RANGE layout (one u64 key).</param>
    /// <param name="count">Rows.</param>
    /// <param name="dim">Floats per row.</param>
    /// <param name="values">True when the block carries values.</param>
    public static long SizeOf(bool range, int count, int dim, bool values) =>
        KvBlock.HeaderSize + (range ? 8L : 8L * count) + (values ? 4L * count * dim : 0);

    /// <summary>Writes the 24-byte header.</summary>
    public static void WriteHeader(Span<byte> dest, KvFlags flags, int dim, int count)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(dest, KvBlock.Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[4..], KvBlock.CurrentVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[6..], (ushort)flags);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[8..], (uint)dim);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[12..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[16..], (ulong)count);
    }

    /// <summary>
    /// Writes a block with explicit keys and, when <paramref name="values"/> is not empty, their rows.
    /// Returns the number of bytes written. Keys are written as given: the caller keeps them ascending.
    /// </summary>
    public static int Write(Span<byte> dest, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values, int dim, bool withValues)
    {
        int count = keys.Length;
        if (withValues && values.Length != count * dim)
            throw new ArgumentException($"{count} keys × dim {dim} need {count * dim} values, not {values.Length}.", nameof(values));
        WriteHeader(dest, withValues ? KvFlags.Values : KvFlags.None, dim, count);
        int offset = KvBlock.HeaderSize;
        MemoryMarshal.AsBytes(keys).CopyTo(dest[offset..]);
        offset += count * 8;
        if (withValues)
        {
            MemoryMarshal.AsBytes(values).CopyTo(dest[offset..]);
            offset += values.Length * 4;
        }
        return offset;
    }

    /// <summary>Writes a RANGE block for keys first … first+count-1. Returns the bytes written.</summary>
    public static int WriteRange(Span<byte> dest, ulong first, int count, ReadOnlySpan<float> values, int dim, bool withValues)
    {
        if (withValues && values.Length != count * dim)
            throw new ArgumentException($"{count} rows × dim {dim} need {count * dim} values, not {values.Length}.", nameof(values));
        WriteHeader(dest, KvFlags.Range | (withValues ? KvFlags.Values : KvFlags.None), dim, count);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[KvBlock.HeaderSize..], first);
        int offset = KvBlock.HeaderSize + 8;
        if (withValues)
        {
            MemoryMarshal.AsBytes(values).CopyTo(dest[offset..]);
            offset += values.Length * 4;
        }
        return offset;
    }
}
