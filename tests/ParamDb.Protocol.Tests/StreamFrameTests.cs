using System.Buffers.Binary;
using System.Text;
using ParamDb.Protocol.Stream;

namespace ParamDb.Protocol.Tests;

/// <summary>
/// Golden bytes of the stream's request and reply frames (docs/streaming.md), written out by hand from the layout;
/// clients in other languages are checked against the same bytes, so these may only grow. Then a table of
/// malformed request headers with the code each must give and whether its id can still be answered.
/// </summary>
public sealed class StreamFrameTests
{
    private static byte[] Hex(string hex) => KvBlockGoldenTests.Hex(hex);

    // Pull of key 7 (dim 0) from "emb", id 0x0102030405060708, worker 5, sequential at clock 9.
    private const string PullFrame =
        "44 00 00 00" +             // length 68: 28 more header bytes + 8 of name + 32 of KV block
        "08 07 06 05 04 03 02 01" + // request id
        "02" +                      // op pull
        "00" +                      // flags
        "03 00" +                   // table name length 3
        "05 00 00 00" +             // worker 5
        "00 00 00 00" +             // staleness 0: sequential
        "09 00 00 00 00 00 00 00" + // clock 9
        "65 6D 62 00 00 00 00 00" + // "emb", zero-padded to 8
        "50 44 42 31 01 00 00 00 00 00 00 00 00 00 00 00" + // KV block: PDB1 v1, no flags, dim 0
        "01 00 00 00 00 00 00 00" + // count 1
        "07 00 00 00 00 00 00 00";  // key 7

    // Push of the range [4096] = 1.0 into "emb", id 1, no worker, eventual, KV block LZ4 flag off.
    private const string PushFrame =
        "48 00 00 00" + "01 00 00 00 00 00 00 00" +
        "01" + "00" + "03 00" + "00 00 00 00" +
        "FF FF FF FF" +             // staleness -1: eventual
        "00 00 00 00 00 00 00 00" +
        "65 6D 62 00 00 00 00 00" +
        "50 44 42 31 01 00 03 00 01 00 00 00 00 00 00 00" + // RANGE | VALUES, dim 1
        "01 00 00 00 00 00 00 00" + "00 10 00 00 00 00 00 00" + "00 00 80 3F";

    // Tick of worker 2 to clock 4 on "t", id 3: no KV block.
    private const string TickFrame =
        "24 00 00 00" + "03 00 00 00 00 00 00 00" +
        "03" + "00" + "01 00" + "02 00 00 00" + "FF FF FF FF" + "04 00 00 00 00 00 00 00" +
        "74 00 00 00 00 00 00 00";

    // Push reply to id 1: 200, rows 2, applied 1.
    private const string AckReply =
        "24 00 00 00" + "01 00 00 00 00 00 00 00" + "C8 00" + "00 00" + "00 00 00 00 00 00 00 00" +
        "02 00 00 00 00 00 00 00" + "01 00 00 00 00 00 00 00";

    // Pull reply header to id 0x0102030405060708: 200, payload LZ4, clock min 7, 10 payload bytes.
    private const string PullReplyHeader =
        "1E 00 00 00" + "08 07 06 05 04 03 02 01" + "C8 00" + "01 00" + "07 00 00 00 00 00 00 00";

    // Stream-level error header: id 0, 404 (0x0194), no flags, clock 0, 2 payload bytes ("{}").
    private const string ErrorReply = "16 00 00 00" + "00 00 00 00 00 00 00 00" + "94 01" + "00 00" + "00 00 00 00 00 00 00 00" + "7B 7D";

    [Fact]
    public void PullFrameMatchesItsGoldenBytes()
    {
        byte[] golden = Hex(PullFrame);
        byte[] kv = golden[40..];
        var written = new byte[golden.Length];
        int offset = StreamRequestHeader.Write(written, 0x0102030405060708, StreamOp.Pull, StreamFrameFlags.None, "emb"u8, 5, 0, 9, kv.Length);
        kv.CopyTo(written, offset);

        Assert.Equal(40, offset);
        Assert.Equal(golden, written);
        Assert.True(StreamRequestHeader.TryParse(golden, out var h, out var name, out var error), error.Detail);
        Assert.Equal((0x0102030405060708UL, StreamOp.Pull, StreamFrameFlags.None, 5u, 0, 9UL), (h.RequestId, h.Op, h.Flags, h.Worker, h.Staleness, h.Clock));
        Assert.Equal("emb", Encoding.UTF8.GetString(name));
        Assert.Equal((40, 32L, (long)golden.Length), (h.PayloadOffset, h.PayloadLength, h.FrameLength));
        Assert.True(KvBlock.TryParse(golden.AsSpan(h.PayloadOffset), KvExpect.NoValues, 10, out var block, out _));
        Assert.Equal(7UL, block.KeyAt(golden.AsSpan(h.PayloadOffset), 0));
    }

    /// <summary>The pull frame above, sliced by a client at ring epoch 0x1122 (flag bit1, the epoch after the name).</summary>
    private const string PullFrameWithEpoch =
        "4C 00 00 00" +             // length 76: 8 more than without the epoch
        "08 07 06 05 04 03 02 01" + // request id
        "02" +                      // op pull
        "02" +                      // flags: bit1, a ring epoch follows the table name
        "03 00" +                   // table name length 3
        "05 00 00 00" +             // worker 5
        "00 00 00 00" +             // staleness 0: sequential
        "09 00 00 00 00 00 00 00" + // clock 9
        "65 6D 62 00 00 00 00 00" + // "emb", zero-padded to 8
        "22 11 00 00 00 00 00 00" + // ring epoch 0x1122
        "50 44 42 31 01 00 00 00 00 00 00 00 00 00 00 00" + // KV block: PDB1 v1, no flags, dim 0
        "01 00 00 00 00 00 00 00" + // count 1
        "07 00 00 00 00 00 00 00";  // key 7

    [Fact]
    public void AFrameWithARingEpochMatchesItsGoldenBytes()
    {
        byte[] golden = Hex(PullFrameWithEpoch);
        byte[] kv = golden[48..];
        var written = new byte[golden.Length];
        int offset = StreamRequestHeader.Write(written, 0x0102030405060708, StreamOp.Pull, StreamFrameFlags.None, "emb"u8, 5, 0, 9, kv.Length, ringEpoch: 0x1122);
        kv.CopyTo(written, offset);

        Assert.Equal(48, offset);
        Assert.Equal(golden, written);
        Assert.True(StreamRequestHeader.TryParse(golden, out var h, out _, out var error), error.Detail);
        Assert.Equal((StreamFrameFlags.RingEpoch, 0x1122UL, 48, 32L), (h.Flags, h.RingEpoch, h.PayloadOffset, h.PayloadLength));
        Assert.True(StreamRequestHeader.TryParse(Hex(PullFrame), out var plain, out _, out _));
        Assert.Equal(0UL, plain.RingEpoch);
    }

    [Fact]
    public void PushAndTickFramesMatchTheirGoldenBytes()
    {
        byte[] push = Hex(PushFrame);
        var written = new byte[push.Length];
        int offset = StreamRequestHeader.Write(written, 1, StreamOp.Push, StreamFrameFlags.None, "emb"u8, 0, -1, 0, push.Length - 40);
        push.AsSpan(40).CopyTo(written.AsSpan(offset));
        Assert.Equal(push, written);
        Assert.True(StreamRequestHeader.TryParse(push, out var h, out _, out var error), error.Detail);
        Assert.Equal((StreamOp.Push, -1, 36L), (h.Op, h.Staleness, h.PayloadLength));

        byte[] tick = Hex(TickFrame);
        written = new byte[tick.Length];
        Assert.Equal(tick.Length, StreamRequestHeader.Write(written, 3, StreamOp.Tick, StreamFrameFlags.None, "t"u8, 2, -1, 4, 0));
        Assert.Equal(tick, written);
        Assert.True(StreamRequestHeader.TryParse(tick, out h, out _, out error), error.Detail);
        Assert.Equal((StreamOp.Tick, 2u, 4UL, 0L), (h.Op, h.Worker, h.Clock, h.PayloadLength));
    }

    [Fact]
    public void ReplyFramesMatchTheirGoldenBytes()
    {
        byte[] ack = Hex(AckReply);
        var written = new byte[ack.Length];
        StreamReplyHeader.Write(written, 1, 200, StreamFrameFlags.None, 0, StreamReplyHeader.PushPayloadSize);
        StreamReplyHeader.WritePushPayload(written.AsSpan(StreamReplyHeader.Size), 2, 1);
        Assert.Equal(ack, written);
        Assert.True(StreamReplyHeader.TryParse(ack, out var h, out var error), error);
        Assert.Equal((1UL, (ushort)200, 16L), (h.RequestId, h.Status, h.PayloadLength));
        Assert.Equal((2L, 1L), StreamReplyHeader.ReadPushPayload(ack.AsSpan(StreamReplyHeader.Size)));

        byte[] pull = Hex(PullReplyHeader);
        written = new byte[pull.Length];
        StreamReplyHeader.Write(written, 0x0102030405060708, 200, StreamFrameFlags.Lz4, 7, 10);
        Assert.Equal(pull, written);
        Assert.True(StreamReplyHeader.TryParse(pull, out h, out error), error);
        Assert.Equal((StreamFrameFlags.Lz4, 7UL, 10L), (h.Flags, h.Clock, h.PayloadLength));

        byte[] problem = Hex(ErrorReply);
        written = new byte[problem.Length];
        StreamReplyHeader.Write(written, 0, 404, StreamFrameFlags.None, 0, 2);
        "{}"u8.CopyTo(written.AsSpan(StreamReplyHeader.Size));
        Assert.Equal(problem, written);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(128)]
    public void TableNamesOfEveryLengthUpTo128ArePaddedTo8AndParse(int nameLength)
    {
        byte[] name = Encoding.ASCII.GetBytes(new string('n', nameLength));
        byte[] kv = Hex(PullFrame)[40..];
        var frame = new byte[StreamRequestHeader.Size + StreamRequestHeader.Pad8(nameLength) + kv.Length];
        int offset = StreamRequestHeader.Write(frame, 9, StreamOp.Pull, StreamFrameFlags.Lz4, name, 0, 3, 0, kv.Length);
        kv.CopyTo(frame, offset);

        Assert.Equal(0, offset % 8);
        Assert.True(StreamRequestHeader.TryParse(frame, out var h, out var parsed, out var error), error.Detail);
        Assert.Equal(name, parsed.ToArray());
        Assert.Equal((StreamFrameFlags.Lz4, 3, offset), (h.Flags, h.Staleness, h.PayloadOffset));
    }

    private static byte[] Golden(Action<byte[]> change)
    {
        byte[] frame = Hex(PullFrame);
        change(frame);
        return frame;
    }

    private static void SetLength(byte[] frame, uint length) => BinaryPrimitives.WriteUInt32LittleEndian(frame, length);

    /// <summary>name, frame bytes, code, the id the error can be answered under (0: none).</summary>
    public static TheoryData<string, byte[], string, ulong> Malformed => new()
    {
        { "11 bytes: no id", Hex(PullFrame)[..11], ProblemCodes.BadFrame, 0 },
        { "length 4: the id would be the next frame's bytes", Golden(f => SetLength(f, 4)), ProblemCodes.BadFrame, 0 },
        { "length 7", Golden(f => SetLength(f, 7)), ProblemCodes.BadFrame, 0 },
        { "length 8: an id and no header", Golden(f => SetLength(f, 8)), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "length 27: one byte short of the header", Golden(f => SetLength(f, 27)), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "only 31 bytes given", Hex(PullFrame)[..31], ProblemCodes.BadFrame, 0x0102030405060708 },
        { "request id 0", Golden(f => f.AsSpan(4, 8).Clear()), ProblemCodes.BadFrame, 0 },
        { "op 0", Golden(f => f[12] = 0), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "op 4", Golden(f => f[12] = 4), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "flag bit2", Golden(f => f[13] = 4), ProblemCodes.BadFrame, 0x0102030405060708 },   // bit1 is the ring epoch
        { "flag bit7", Golden(f => f[13] = 0x80), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "staleness -2", Golden(f => BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(20), -2)), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "name length 0", Golden(f => f[14] = 0), ProblemCodes.InvalidTableName, 0x0102030405060708 },
        { "name length 129", Golden(f => f[14] = 129), ProblemCodes.InvalidTableName, 0x0102030405060708 },
        { "name length 65535", Golden(f => { f[14] = 0xFF; f[15] = 0xFF; }), ProblemCodes.InvalidTableName, 0x0102030405060708 },
        { "length ends inside the name", Golden(f => SetLength(f, 32)), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "only part of the name given", Hex(PullFrame)[..36], ProblemCodes.BadFrame, 0x0102030405060708 },
        { "padding byte not zero", Golden(f => f[39] = 1), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "tick with a KV block", Golden(f => f[12] = (byte)StreamOp.Tick), ProblemCodes.BadFrame, 0x0102030405060708 },
        { "pull without a KV block", Golden(f => SetLength(f, 36))[..40], ProblemCodes.BadFrame, 0x0102030405060708 },
        { "push without a KV block", Golden(f => { SetLength(f, 36); f[12] = (byte)StreamOp.Push; })[..40], ProblemCodes.BadFrame, 0x0102030405060708 },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedRequestHeaderIsRejectedWithItsCodeAndAnswerableId(string name, byte[] frame, string code, ulong id)
    {
        bool ok = StreamRequestHeader.TryParse(frame, out var header, out _, out var error);

        Assert.False(ok, $"{name}: parsed");
        Assert.Equal(code, error.Code);
        Assert.Equal(400, error.Status);
        Assert.Equal(id, header.RequestId);
        Assert.False(string.IsNullOrWhiteSpace(error.Detail));
    }

    [Theory]
    [InlineData("23 bytes", "14 00 00 00 01 00 00 00 00 00 00 00 C8 00 00 00 00 00 00 00 00 00 00")]
    [InlineData("length shorter than the header", "13 00 00 00 01 00 00 00 00 00 00 00 C8 00 00 00 00 00 00 00 00 00 00 00")]
    [InlineData("unknown flag bit1", "14 00 00 00 01 00 00 00 00 00 00 00 C8 00 02 00 00 00 00 00 00 00 00 00")]
    public void MalformedReplyHeaderIsRejected(string name, string hex)
    {
        Assert.False(StreamReplyHeader.TryParse(Hex(hex), out _, out var error), name);
        Assert.False(string.IsNullOrEmpty(error));
    }
}
