using System.Buffers.Binary;

namespace ParamDb.Protocol.Stream;

/// <summary>
/// The fixed part of a stream request frame (docs/streaming.md). All integers little-endian.
/// <code>
/// offset  size  field
/// 0       4     u32 length of the rest of the frame (everything after these 4 bytes)
/// 4       8     u64 request id (client's choice; 0 is reserved for stream-level errors)
/// 12      1     u8  op: 1 push, 2 pull, 3 tick
/// 13      1     u8  flags: bit0 the KV block is one LZ4 frame; bit1 a ring epoch follows the table name
/// 14      2     u16 table name length L, 1…128
/// 16      4     u32 worker (0 = none)
/// 20      4     i32 staleness: -1 eventual, 0 sequential, τ &gt; 0 bounded delay τ
/// 24      8     u64 clock (0 = none)
/// 32      L     table name (UTF-8), zero-padded to a multiple of 8
/// (8)           u64 ring epoch, only with flag bit1 (docs/cluster.md)
/// …       …     KV block (docs/wire-format.md): push with VALUES, pull without, tick empty
/// </code>
/// The KV block starts at <c>32 + pad8(L)</c> (+ 8 with the epoch) from the frame's start, so it stays 8-byte
/// aligned in a buffer that holds the frame at an aligned offset.
/// </summary>
public readonly record struct StreamRequestHeader
{
    /// <summary>Bytes before the table name.</summary>
    public const int Size = 32;

    /// <summary>Bytes of the length prefix.</summary>
    public const int LengthPrefix = 4;

    /// <summary>Bytes from the frame's start to the end of the request id: what must arrive to answer a frame at all.</summary>
    public const int IdEnd = 12;

    /// <summary>Length of the rest of the frame (after the 4-byte prefix).</summary>
    public uint Length { get; init; }

    /// <summary>The client's id for the request; the reply carries it back.</summary>
    public ulong RequestId { get; init; }

    /// <summary>The operation.</summary>
    public StreamOp Op { get; init; }

    /// <summary>Frame flags.</summary>
    public StreamFrameFlags Flags { get; init; }

    /// <summary>Bytes of the table name, unpadded.</summary>
    public int TableNameLength { get; init; }

    /// <summary>Registered worker id, 0 for none.</summary>
    public uint Worker { get; init; }

    /// <summary>-1 eventual, 0 sequential, τ &gt; 0 bounded delay.</summary>
    public int Staleness { get; init; }

    /// <summary>The worker's clock, 0 for none.</summary>
    public ulong Clock { get; init; }

    /// <summary>The ring epoch the sender sliced the keys by (flag bit1); 0 without it.</summary>
    public ulong RingEpoch { get; init; }

    /// <summary>Offset of the KV block from the frame's start.</summary>
    public int PayloadOffset => Size + Pad8(TableNameLength) + ((Flags & StreamFrameFlags.RingEpoch) != 0 ? 8 : 0);

    /// <summary>Bytes of the KV block (possibly LZ4-framed).</summary>
    public long PayloadLength => LengthPrefix + (long)Length - PayloadOffset;

    /// <summary>Total bytes of the frame, prefix included.</summary>
    public long FrameLength => LengthPrefix + (long)Length;

    /// <summary><paramref name="n"/> rounded up to a multiple of 8.</summary>
    public static int Pad8(int n) => (n + 7) & ~7;

    /// <summary>Reads the request id of a frame whose first <see cref="IdEnd"/> bytes are given.</summary>
    public static ulong ReadRequestId(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadUInt64LittleEndian(frame[4..]);

    /// <summary>
    /// Parses and validates the fixed header and the table name of a request frame. <paramref name="frame"/>
    /// holds at least the first <c>min(FrameLength, Size + 128 padded)</c> bytes; the KV block is not looked at.
    /// </summary>
    /// <param name="frame">The frame from its length prefix on.</param>
    /// <param name="header">The header when true; when false and the frame is at least <see cref="IdEnd"/> bytes
    /// long with a length that covers the id (≥ 8), its <see cref="RequestId"/> is still set so the error can be
    /// answered; otherwise it is 0.</param>
    /// <param name="tableName">The table name's UTF-8 bytes, a slice of <paramref name="frame"/>.</param>
    /// <param name="error">Why the frame is malformed.</param>
    public static bool TryParse(ReadOnlySpan<byte> frame, out StreamRequestHeader header, out ReadOnlySpan<byte> tableName, out ProtocolError error)
    {
        header = default;
        tableName = default;
        if (frame.Length < IdEnd)
        {
            error = Bad($"A stream request frame needs at least {IdEnd} bytes to carry its request id; got {frame.Length}.");
            return false;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        if (length < IdEnd - LengthPrefix)
        {
            // The id's 8 bytes would lie past the frame's end (in the next frame), so there is no id to answer.
            header = new StreamRequestHeader { Length = length };
            error = Bad($"Frame length {length} is too short to hold a request id ({IdEnd - LengthPrefix} bytes).");
            return false;
        }
        ulong id = ReadRequestId(frame);
        header = new StreamRequestHeader { Length = length, RequestId = id };
        if (LengthPrefix + (long)length < Size)
        {
            error = Bad($"Frame length {length} is shorter than the {Size - LengthPrefix}-byte request header.");
            return false;
        }
        if (frame.Length < Size)
        {
            error = Bad($"The frame holds {frame.Length} bytes; its header needs {Size}.");
            return false;
        }
        if (id == 0)
        {
            error = Bad("Request id 0 is reserved for stream-level errors; use any other id.");
            return false;
        }
        byte op = frame[12];
        byte flags = frame[13];
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(frame[14..]);
        uint worker = BinaryPrimitives.ReadUInt32LittleEndian(frame[16..]);
        int staleness = BinaryPrimitives.ReadInt32LittleEndian(frame[20..]);
        ulong clock = BinaryPrimitives.ReadUInt64LittleEndian(frame[24..]);
        if (op is < (byte)StreamOp.Push or > (byte)StreamOp.Tick)
        {
            error = Bad($"Unknown op {op}: 1 push, 2 pull, 3 tick.");
            return false;
        }
        if ((flags & ~(int)(StreamFrameFlags.Lz4 | StreamFrameFlags.RingEpoch)) != 0)
        {
            error = Bad($"Unknown request flag bits 0x{flags:x2}: only bit0 (LZ4) and bit1 (ring epoch) are defined.");
            return false;
        }
        if (staleness < -1)
        {
            error = Bad($"Staleness {staleness} is not -1 (eventual), 0 (sequential) or a bound τ > 0.");
            return false;
        }
        header = header with
        {
            Op = (StreamOp)op,
            Flags = (StreamFrameFlags)flags,
            TableNameLength = nameLength,
            Worker = worker,
            Staleness = staleness,
            Clock = clock,
        };
        if (nameLength is 0 or > TableNames.MaxLength)
        {
            error = new ProtocolError(400, ProblemCodes.InvalidTableName, $"Table name length {nameLength} is not 1…{TableNames.MaxLength}.");
            return false;
        }
        if (header.PayloadLength < 0)
        {
            error = Bad($"Frame length {length} ends inside the table name ({nameLength} bytes, padded to {Pad8(nameLength)}).");
            return false;
        }
        if (frame.Length < header.PayloadOffset)
        {
            error = Bad($"The frame holds {frame.Length} bytes; its header and table name need {header.PayloadOffset}.");
            return false;
        }
        tableName = frame.Slice(Size, nameLength);
        int nameEnd = Size + Pad8(nameLength);
        if ((header.Flags & StreamFrameFlags.RingEpoch) != 0) header = header with { RingEpoch = BinaryPrimitives.ReadUInt64LittleEndian(frame[nameEnd..]) };
        foreach (byte pad in frame[(Size + nameLength)..nameEnd])
        {
            if (pad != 0)
            {
                error = Bad("The table name's padding must be zero bytes.");
                return false;
            }
        }
        if (header.Op == StreamOp.Tick && header.PayloadLength != 0)
        {
            error = Bad($"A tick carries no KV block; this one has {header.PayloadLength} bytes.");
            return false;
        }
        if (header.Op != StreamOp.Tick && header.PayloadLength == 0)
        {
            error = Bad($"A {(header.Op == StreamOp.Push ? "push" : "pull")} frame needs a KV block.");
            return false;
        }
        error = default;
        return true;
    }

    /// <summary>
    /// Writes the header and the padded table name; the caller appends the KV block of
    /// <paramref name="payloadLength"/> bytes at <see cref="PayloadOffset"/>.
    /// </summary>
    /// <returns>Bytes written (the payload offset).</returns>
    public static int Write(Span<byte> destination, ulong requestId, StreamOp op, StreamFrameFlags flags, ReadOnlySpan<byte> tableNameUtf8, uint worker, int staleness, ulong clock, long payloadLength,
        ulong ringEpoch = 0)
    {
        if (ringEpoch != 0) flags |= StreamFrameFlags.RingEpoch;
        int nameEnd = Size + Pad8(tableNameUtf8.Length);
        int payloadOffset = nameEnd + ((flags & StreamFrameFlags.RingEpoch) != 0 ? 8 : 0);
        long length = payloadOffset - LengthPrefix + payloadLength;
        if (length > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(payloadLength), "A stream frame holds at most 4 GiB.");
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)length);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[4..], requestId);
        destination[12] = (byte)op;
        destination[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[14..], (ushort)tableNameUtf8.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], worker);
        BinaryPrimitives.WriteInt32LittleEndian(destination[20..], staleness);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], clock);
        tableNameUtf8.CopyTo(destination[Size..]);
        destination[(Size + tableNameUtf8.Length)..nameEnd].Clear();
        if (payloadOffset > nameEnd) BinaryPrimitives.WriteUInt64LittleEndian(destination[nameEnd..], ringEpoch);
        return payloadOffset;
    }

    private static ProtocolError Bad(string detail) => new(400, ProblemCodes.BadFrame, detail);
}
