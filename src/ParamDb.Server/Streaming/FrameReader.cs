using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Server.Http;

namespace ParamDb.Server.Streaming;

/// <summary>What <see cref="FrameReader.ReadAsync"/> found.</summary>
internal enum FrameStatus
{
    /// <summary>A well-formed frame: header, table name and payload (the inflated KV block).</summary>
    Frame,
    /// <summary>A frame with a readable request id but a bad header, an oversized payload, bad LZ4 or a truncated
    /// body: answer it with <see cref="IncomingFrame.Error"/>; its bytes are skipped.</summary>
    Rejected,
    /// <summary>No request id can be read (length &lt; 8, or the body ends before the id): answer with id 0 and end.</summary>
    StreamError,
    /// <summary>The request body ended cleanly between frames.</summary>
    End,
}

/// <summary>One request frame, or why there is none. The caller owns <see cref="Payload"/>.</summary>
internal readonly record struct IncomingFrame(FrameStatus Status, StreamRequestHeader Header, string? Table, PooledBuffer? Payload, ProtocolError Error, bool EndsStream)
{
    public static IncomingFrame Rejected(ulong requestId, ProtocolError error, bool endsStream) =>
        new(FrameStatus.Rejected, new StreamRequestHeader { RequestId = requestId }, null, null, error, endsStream);
}

/// <summary>
/// Splits the stream's request body into frames at the <see cref="PipeReader"/> level (docs/streaming.md, docs/design.md#facts-measured-on-the-development-machine): the
/// header is parsed where it lies in Kestrel's buffers (copied to the stack only when it straddles two
/// segments), and the payload is copied once, segment by segment as it arrives, into one pooled buffer of its
/// exact size. Nothing is re-scanned: every byte is consumed as soon as it has been looked at. The bytes of a
/// rejected frame are consumed and dropped, never buffered.
/// </summary>
/// <remarks>Not thread-safe: one per stream, used by its reader loop only.</remarks>
internal sealed class FrameReader(PipeReader reader, long maxBodyBytes)
{
    /// <summary>The fixed header, the longest padded table name and a ring epoch: every header check fits in this.</summary>
    private const int MaxHeaderBytes = StreamRequestHeader.Size + TableNames.MaxLength + sizeof(ulong);

    private long _skip;
    private readonly byte[] _tableBytes = new byte[TableNames.MaxLength];
    private int _tableLength;
    private string? _table;

    /// <summary>Reads the next frame.</summary>
    public async ValueTask<IncomingFrame> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (_skip > 0)
            {
                long n = Math.Min(_skip, buffer.Length);
                reader.AdvanceTo(buffer.GetPosition(n));
                _skip -= n;
                // The skipped frame was answered already; a body that ends inside it ends the stream quietly.
                if (_skip > 0 && result.IsCompleted) return default(IncomingFrame) with { Status = FrameStatus.End };
                continue;
            }

            var step = ParseHeader(buffer, result.IsCompleted, out IncomingFrame frame, out long consumed);
            if (step == Step.NeedMore)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }
            if (step == Step.Done)
            {
                reader.AdvanceTo(buffer.GetPosition(consumed));
                return frame;
            }
            return await ReadPayloadAsync(frame, buffer.Slice(consumed), result.IsCompleted, cancellationToken).ConfigureAwait(false);
        }
    }

    private enum Step { NeedMore, Done, Payload }

    /// <summary>
    /// Parses a frame's header and table name from the front of <paramref name="buffer"/>; for a rejected frame,
    /// consumes what it can of it and sets <see cref="_skip"/> to the rest.
    /// </summary>
    private Step ParseHeader(in ReadOnlySequence<byte> buffer, bool completed, out IncomingFrame frame, out long consumed)
    {
        frame = default;
        consumed = 0;
        long have = buffer.Length;
        if (have < StreamRequestHeader.LengthPrefix)
        {
            if (!completed) return Step.NeedMore;
            if (have == 0)
            {
                frame = frame with { Status = FrameStatus.End };
                return Step.Done;
            }
            frame = StreamError($"The request body ends inside a frame's 4-byte length prefix ({have} bytes).");
            consumed = have;
            return Step.Done;
        }

        Span<byte> scratch = stackalloc byte[MaxHeaderBytes];
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(Front(buffer, StreamRequestHeader.LengthPrefix, scratch));
        long frameLength = StreamRequestHeader.LengthPrefix + (long)length;
        if (frameLength < StreamRequestHeader.IdEnd)
        {
            // The 8 bytes where the id would be belong to the next frame: nothing here can be trusted or answered.
            frame = StreamError($"Frame length {length} is too short to carry a request id (8 bytes); the stream cannot be read past it.");
            consumed = Math.Min(have, frameLength);
            return Step.Done;
        }
        int need = (int)Math.Min(frameLength, MaxHeaderBytes);
        if (have < need)
        {
            if (!completed) return Step.NeedMore;
            consumed = have;
            if (have < StreamRequestHeader.IdEnd)
            {
                frame = StreamError($"The request body ends {have} bytes into a frame, before its request id.");
                return Step.Done;
            }
            ulong id = StreamRequestHeader.ReadRequestId(Front(buffer, StreamRequestHeader.IdEnd, scratch));
            frame = IncomingFrame.Rejected(id, Truncated(have, frameLength), endsStream: true);
            return Step.Done;
        }

        ReadOnlySpan<byte> head = Front(buffer, need, scratch);
        if (!StreamRequestHeader.TryParse(head, out var header, out var name, out var error))
        {
            frame = Reject(header.RequestId, error, buffer, completed, frameLength, out consumed);
            return Step.Done;
        }
        if (header.PayloadLength > maxBodyBytes)
        {
            error = new ProtocolError(413, ProblemCodes.BodyTooLarge,
                $"The frame's KV block is {header.PayloadLength} bytes; this server accepts at most {maxBodyBytes} (--max-body-size). Its bytes were skipped.");
            frame = Reject(header.RequestId, error, buffer, completed, frameLength, out consumed);
            return Step.Done;
        }
        frame = new IncomingFrame(FrameStatus.Frame, header, TableOf(name), null, default, false);
        consumed = header.PayloadOffset;
        return Step.Payload;
    }

    /// <summary>Copies the payload into one pooled buffer as it arrives, then inflates it when flagged LZ4.</summary>
    private async ValueTask<IncomingFrame> ReadPayloadAsync(IncomingFrame frame, ReadOnlySequence<byte> data, bool completed, CancellationToken cancellationToken)
    {
        var header = frame.Header;
        long remaining = header.PayloadLength;
        if (remaining == 0)
        {
            reader.AdvanceTo(data.Start);
            return frame;
        }
        var payload = new PooledBuffer((int)remaining);
        try
        {
            while (true)
            {
                long take = Math.Min(data.Length, remaining);
                data.Slice(0, take).CopyTo(payload.Array.AsSpan(payload.Length));
                payload.Length += (int)take;
                remaining -= take;
                reader.AdvanceTo(data.GetPosition(take));
                if (remaining == 0) break;
                if (completed)
                {
                    payload.Dispose();
                    return IncomingFrame.Rejected(header.RequestId, Truncated(header.FrameLength - remaining, header.FrameLength), endsStream: true);
                }
                ReadResult result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                data = result.Buffer;
                completed = result.IsCompleted;
            }
        }
        catch
        {
            payload.Dispose();
            throw;
        }

        if ((header.Flags & StreamFrameFlags.Lz4) != 0)
        {
            var plain = FrameLz4.Inflate(payload.Memory, maxBodyBytes, out var error);
            payload.Dispose();
            if (plain is null) return IncomingFrame.Rejected(header.RequestId, error, endsStream: false);
            payload = plain;
        }
        return frame with { Payload = payload };
    }

    /// <summary>A rejected frame: consume what is here of it, skip the rest as it arrives.</summary>
    private IncomingFrame Reject(ulong requestId, ProtocolError error, in ReadOnlySequence<byte> buffer, bool completed, long frameLength, out long consumed)
    {
        consumed = Math.Min(buffer.Length, frameLength);
        _skip = frameLength - consumed;
        bool ends = _skip > 0 && completed;
        if (ends) _skip = 0;
        return IncomingFrame.Rejected(requestId, error, ends);
    }

    /// <summary>The first <paramref name="count"/> bytes, in place when the first segment holds them.</summary>
    private static ReadOnlySpan<byte> Front(in ReadOnlySequence<byte> buffer, int count, Span<byte> scratch)
    {
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length >= count) return first[..count];
        buffer.Slice(0, count).CopyTo(scratch);
        return scratch[..count];
    }

    /// <summary>The table name as a string; a stream mostly names one table, so the last one is reused.</summary>
    private string TableOf(ReadOnlySpan<byte> name)
    {
        if (_table is not null && name.SequenceEqual(_tableBytes.AsSpan(0, _tableLength))) return _table;
        name.CopyTo(_tableBytes);
        _tableLength = name.Length;
        // Invalid UTF-8 becomes U+FFFD, which the name rule then refuses with invalid_table_name.
        return _table = Encoding.UTF8.GetString(name);
    }

    private static IncomingFrame StreamError(string detail) =>
        new(FrameStatus.StreamError, default, null, null, new ProtocolError(400, ProblemCodes.BadFrame, detail), true);

    private static ProtocolError Truncated(long have, long frameLength) =>
        new(400, ProblemCodes.Truncated, $"The request body ends {have} bytes into a {frameLength}-byte frame.");
}
