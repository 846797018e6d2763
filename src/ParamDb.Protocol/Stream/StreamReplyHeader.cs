using System.Buffers.Binary;

namespace ParamDb.Protocol.Stream;

/// <summary>
/// The fixed part of a stream reply frame (docs/streaming.md). All integers little-endian.
/// <code>
/// offset  size  field
/// 0       4     u32 length of the rest of the frame
/// 4       8     u64 request id; 0 answers what had no usable id: a frame sent with id 0 (the stream goes on),
///                 or a stream-level error (the frame could not be delimited, the node is stopping), after
///                 which the server ends the stream
/// 12      2     u16 status (HTTP meaning: 200, 400, 404, 408, 409, 413…)
/// 14      2     u16 flags: bit0 the payload is one LZ4 frame
/// 16      8     u64 clock: the minimum clock of the ranges read (pull), else 0
/// 24      …     payload: pull → KV block; push/tick → u64 rows, u64 applied; error → problem details JSON (UTF-8)
/// </code>
/// </summary>
public readonly record struct StreamReplyHeader
{
    /// <summary>Bytes of the fixed header, length prefix included; the payload starts here, 8-byte aligned.</summary>
    public const int Size = 24;

    /// <summary>Bytes of a push or tick payload: u64 rows, u64 applied.</summary>
    public const int PushPayloadSize = 16;

    /// <summary>Length of the rest of the frame.</summary>
    public uint Length { get; init; }

    /// <summary>The request this answers.</summary>
    public ulong RequestId { get; init; }

    /// <summary>HTTP-style status.</summary>
    public ushort Status { get; init; }

    /// <summary>Reply flags.</summary>
    public StreamFrameFlags Flags { get; init; }

    /// <summary>Minimum clock of the ranges a pull read; 0 otherwise.</summary>
    public ulong Clock { get; init; }

    /// <summary>Bytes of the payload.</summary>
    public long PayloadLength => StreamRequestHeader.LengthPrefix + (long)Length - Size;

    /// <summary>Parses the fixed header; false (with the reason) when it is short or inconsistent.</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, out StreamReplyHeader header, out string? error)
    {
        header = default;
        if (frame.Length < Size)
        {
            error = $"A reply frame header needs {Size} bytes; got {frame.Length}.";
            return false;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        if (length < Size - StreamRequestHeader.LengthPrefix)
        {
            error = $"Reply frame length {length} is shorter than its header.";
            return false;
        }
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(frame[14..]);
        if ((flags & ~(int)StreamFrameFlags.Lz4) != 0)
        {
            error = $"Unknown reply flag bits 0x{flags:x4}.";
            return false;
        }
        header = new StreamReplyHeader
        {
            Length = length,
            RequestId = BinaryPrimitives.ReadUInt64LittleEndian(frame[4..]),
            Status = BinaryPrimitives.ReadUInt16LittleEndian(frame[12..]),
            Flags = (StreamFrameFlags)flags,
            Clock = BinaryPrimitives.ReadUInt64LittleEndian(frame[16..]),
        };
        error = null;
        return true;
    }

    /// <summary>Writes a reply header for a payload of <paramref name="payloadLength"/> bytes that follows it.</summary>
    public static void Write(Span<byte> destination, ulong requestId, ushort status, StreamFrameFlags flags, ulong clock, long payloadLength)
    {
        long length = Size - StreamRequestHeader.LengthPrefix + payloadLength;
        if (length > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(payloadLength), "A stream frame holds at most 4 GiB.");
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)length);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[4..], requestId);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[12..], status);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[14..], (ushort)flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], clock);
    }

    /// <summary>Writes a push or tick payload: rows in the request, rows applied.</summary>
    public static void WritePushPayload(Span<byte> destination, long rows, long applied)
    {
        BinaryPrimitives.WriteInt64LittleEndian(destination, rows);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], applied);
    }

    /// <summary>Reads a push or tick payload.</summary>
    public static (long Rows, long Applied) ReadPushPayload(ReadOnlySpan<byte> payload) =>
        (BinaryPrimitives.ReadInt64LittleEndian(payload), BinaryPrimitives.ReadInt64LittleEndian(payload[8..]));
}
