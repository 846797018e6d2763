using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace ParamDb.Cluster.Wire;

/// <summary>
/// Appends little-endian fields to a growing buffer: the one writer of commands and metadata snapshots, so
/// every layout spells integers, strings and GUIDs the same way.
/// </summary>
internal sealed class WireWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    public WireWriter(int initialCapacity = 256) => _buffer = new ArrayBufferWriter<byte>(initialCapacity);

    public int Length => _buffer.WrittenCount;

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    public void WriteU8(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
    }

    public void WriteU16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.GetSpan(2), value);
        _buffer.Advance(2);
    }

    public void WriteU32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    public void WriteU64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    /// <summary>16 bytes in <see cref="Guid.ToByteArray()"/> order (its first three fields little-endian).</summary>
    public void WriteGuid(Guid value)
    {
        if (!value.TryWriteBytes(_buffer.GetSpan(16))) throw new InvalidOperationException("GUID did not fit 16 bytes.");
        _buffer.Advance(16);
    }

    /// <summary>u16 byte length, then UTF-8.</summary>
    public void WriteString16(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        int length = Encoding.UTF8.GetByteCount(value);
        if (length > ushort.MaxValue)
            throw new ArgumentException($"String of {length} UTF-8 bytes does not fit a u16 length.", nameof(value));
        WriteU16((ushort)length);
        Encoding.UTF8.GetBytes(value, _buffer.GetSpan(length));
        _buffer.Advance(length);
    }

    /// <summary>u32 byte length, then the bytes.</summary>
    public void WriteBytes32(ReadOnlySpan<byte> value)
    {
        WriteU32((uint)value.Length);
        value.CopyTo(_buffer.GetSpan(value.Length));
        _buffer.Advance(value.Length);
    }

    public void WriteRaw(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_buffer.GetSpan(value.Length));
        _buffer.Advance(value.Length);
    }
}
