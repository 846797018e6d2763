using System.Buffers.Binary;
using System.Text;

namespace ParamDb.Cluster.Wire;

/// <summary>
/// Reads the fields <see cref="WireWriter"/> writes, throwing <see cref="MetadataFormatException"/> naming
/// <c>what</c> is being read and the offset when the input is short, has bytes left over, or holds invalid UTF-8.
/// </summary>
internal ref struct WireReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _data;
    private readonly string _what;
    private int _position;

    public WireReader(ReadOnlySpan<byte> data, string what)
    {
        _data = data;
        _what = what;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _data.Length - _position;

    /// <summary>A reader describing a more precise <paramref name="what"/> from here on (e.g. once the command id is known).</summary>
    public readonly WireReader Rename(string what)
    {
        var reader = new WireReader(_data, what);
        reader._position = _position;
        return reader;
    }

    public byte ReadU8() => Take(1, "u8")[0];

    public ushort ReadU16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, "u16"));

    public uint ReadU32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, "u32"));

    public ulong ReadU64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, "u64"));

    public ReadOnlySpan<byte> ReadRaw(int count, string field) => Take(count, field);

    public Guid ReadGuid() => new(Take(16, "GUID"));

    public string ReadString16(string field)
    {
        int length = ReadU16();
        return Utf8(Take(length, field), field);
    }

    public ReadOnlySpan<byte> ReadBytes32(string field)
    {
        uint length = ReadU32();
        if (length > (uint)Remaining) throw Truncated(field, length);
        return Take((int)length, field);
    }

    /// <summary>Throws unless every byte has been read: a reader of this version never skips what it cannot name.</summary>
    public readonly void EnsureEnd()
    {
        if (Remaining != 0)
            throw new MetadataFormatException($"{_what}: {Remaining} unexpected trailing bytes at offset {_position} of {_data.Length}.");
    }

    public readonly MetadataFormatException Invalid(string detail) => new($"{_what}: {detail} (offset {_position}).");

    private ReadOnlySpan<byte> Take(int count, string field)
    {
        if (count > Remaining) throw Truncated(field, (uint)count);
        var span = _data.Slice(_position, count);
        _position += count;
        return span;
    }

    private readonly MetadataFormatException Truncated(string field, uint needed) =>
        new($"{_what} is truncated: {field} needs {needed} bytes at offset {_position}, {Remaining} left.");

    private readonly string Utf8(ReadOnlySpan<byte> bytes, string field)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new MetadataFormatException($"{_what}: {field} is not valid UTF-8 (before offset {_position}).", e);
        }
    }
}
