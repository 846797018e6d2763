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
    /// Writes a block with explicit keys and, when <paramref name="withValues"/>, their rows.
    /// Returns the number of bytes written. Keys are written as given: the caller keeps them ascending.
    /// </summary>
    public static int Write(Span<byte> dest, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values, int dim, bool withValues)
    {
        int count = keys.Length;
        CheckValues(withValues, count, dim, values.Length);
        int offset = WritePrefix(dest, withValues, range: false, 0, keys, count, dim);
        return CopyValues(dest, offset, values, withValues);
    }

    /// <summary>Writes a RANGE block for keys first … first+count-1. Returns the bytes written.</summary>
    public static int WriteRange(Span<byte> dest, ulong first, int count, ReadOnlySpan<float> values, int dim, bool withValues)
    {
        CheckValues(withValues, count, dim, values.Length);
        int offset = WritePrefix(dest, withValues, range: true, first, default, count, dim);
        return CopyValues(dest, offset, values, withValues);
    }

    /// <summary>
    /// Writes the header (VALUES set) and keys of a block whose count × dim values the caller then fills in
    /// place, e.g. a pull reply read straight from the store. Returns the offset of the values section.
    /// </summary>
    /// <param name="dest">At least <see cref="SizeOf"/>(range, count, dim, values: true) bytes.</param>
    /// <param name="range">True for the RANGE layout: keys first … first+count-1.</param>
    /// <param name="first">First key of a range.</param>
    /// <param name="keys">Explicit keys (ignored for a range).</param>
    /// <param name="count">Rows.</param>
    /// <param name="dim">Floats per row.</param>
    public static int WriteForValues(Span<byte> dest, bool range, ulong first, ReadOnlySpan<ulong> keys, int count, int dim) =>
        WritePrefix(dest, withValues: true, range, first, keys, count, dim);

    private static int WritePrefix(Span<byte> dest, bool withValues, bool range, ulong first, ReadOnlySpan<ulong> keys, int count, int dim)
    {
        WriteHeader(dest, (range ? KvFlags.Range : KvFlags.None) | (withValues ? KvFlags.Values : KvFlags.None), dim, count);
        if (range)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(dest[KvBlock.HeaderSize..], first);
            return KvBlock.HeaderSize + 8;
        }
        MemoryMarshal.AsBytes(keys).CopyTo(dest[KvBlock.HeaderSize..]);
        return KvBlock.HeaderSize + count * 8;
    }

    private static int CopyValues(Span<byte> dest, int offset, ReadOnlySpan<float> values, bool withValues)
    {
        if (!withValues) return offset;
        MemoryMarshal.AsBytes(values).CopyTo(dest[offset..]);
        return offset + values.Length * 4;
    }

    private static void CheckValues(bool withValues, int count, int dim, int length)
    {
        if (withValues && length != count * dim)
            throw new ArgumentException($"{count} rows × dim {dim} need {count * dim} values, not {length}.", "values");
    }
}
