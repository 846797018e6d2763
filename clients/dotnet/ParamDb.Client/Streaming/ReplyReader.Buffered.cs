using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using K4os.Compression.LZ4.Streams;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Client.Internal;

namespace ParamDb.Client.Streaming;

// Payloads read whole into memory (push and tick replies, errors, LZ4-framed replies), and the buffer primitives.
internal sealed partial class ReplyReader
{
    /// <summary>
    /// Reads the whole payload into a pooled buffer, inflates it when LZ4-framed, and interprets it for
    /// <paramref name="request"/> (null: a stream-level error, which is always problem JSON).
    /// </summary>
    private async ValueTask<ReplyOutcome> ReadBufferedAsync(PendingRequest? request)
    {
        long length = Header.PayloadLength;
        bool isPull = request?.Op == StreamOp.Pull;
        if (length > (isPull ? Array.MaxLength : MaxBufferedPayload))
            return await FailAfterSkipAsync(length, $"its {length}-byte payload is larger than any reply to this request").ConfigureAwait(false);
        byte[] raw = ArrayPool<byte>.Shared.Rent((int)Math.Max(length, 1));
        try
        {
            await ReadExactlyAsync(raw.AsMemory(0, (int)length)).ConfigureAwait(false);
            if ((Header.Flags & StreamFrameFlags.Lz4) == 0) return Interpret(raw.AsSpan(0, (int)length), request);
            // A pull of known dim inflates to exactly its block size; guess 4× for others and grow if needed.
            long expected = isPull && request!.Dim > 0
                ? KvBlockWriter.SizeOf(request.Range, request.Count, request.Dim, values: true)
                : Math.Min(Array.MaxLength, 4 * length + 256);
            using var inflated = new PooledArrayWriter((int)Math.Min(expected, Array.MaxLength));
            try
            {
                LZ4Frame.Decode(raw.AsSpan(0, (int)length), inflated);
            }
            catch (Exception e) when (e is InvalidDataException or ArgumentException or IndexOutOfRangeException)
            {
                return new ReplyOutcome(default, BadReply($"its LZ4 frame does not decode ({e.Message.TrimEnd('.')})"));
            }
            byte[] plain = inflated.Detach(out int plainLength);
            try
            {
                return Interpret(plain.AsSpan(0, plainLength), request);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(plain);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    /// <summary>Interprets a plain payload: problem JSON for any status but 200, else the op's reply.</summary>
    private ReplyOutcome Interpret(ReadOnlySpan<byte> payload, PendingRequest? request)
    {
        if (Header.Status != 200 || request is null) return new ReplyOutcome(default, Problem(Header.Status, payload));
        if (request.Op != StreamOp.Pull)
        {
            if (payload.Length != StreamReplyHeader.PushPayloadSize)
                return new ReplyOutcome(default, BadReply($"a push reply carries {StreamReplyHeader.PushPayloadSize} bytes, not {payload.Length}"));
            var (rows, applied) = StreamReplyHeader.ReadPushPayload(payload);
            return new ReplyOutcome(new StreamReply(rows, applied, Header.Clock, null), null);
        }
        if (payload.Length < KvBlock.HeaderSize) return new ReplyOutcome(default, BadReply($"it is {payload.Length} bytes, shorter than a KV header"));
        string? why = CheckPullHead(payload, request, payload.Length, out int dim);
        if (why is not null) return new ReplyOutcome(default, BadReply(why));
        int keysEnd = KvBlock.HeaderSize + (request.Range ? 8 : request.Count * 8);
        ReadOnlySpan<byte> keys = payload[KvBlock.HeaderSize..keysEnd];
        bool same = request.Range
            ? MemoryMarshal.Read<ulong>(keys) == request.First
            : keys.SequenceEqual(MemoryMarshal.AsBytes(request.Keys.Span));
        if (!same) return new ReplyOutcome(default, BadReply("its keys are not the keys that were asked for"));
        float[]? values = null;
        Span<float> destination = request.Destination.Span;
        if (request.Dim == 0)
        {
            values = request.Count == 0 ? [] : new float[checked(request.Count * dim)];
            destination = values;
        }
        payload[keysEnd..].CopyTo(MemoryMarshal.AsBytes(destination));
        return new ReplyOutcome(new StreamReply(0, 0, Header.Clock, values), null);
    }

    /// <summary>A <see cref="ParamDbException"/> from problem-details JSON, or from the status alone when it does not parse.</summary>
    private static ParamDbException Problem(int status, ReadOnlySpan<byte> json)
    {
        try
        {
            var problem = JsonSerializer.Deserialize(json, ProtocolJson.Default.ProblemReply);
            return ParamDbException.From(status, problem, "The server sent an empty error reply.");
        }
        catch (JsonException e)
        {
            return new ParamDbException(status, $"http_{status}", $"The error reply's body could not be read: {e.Message}");
        }
    }

    /// <summary>Fills the buffer to at least <paramref name="count"/> (≤ 64 KiB) bytes; false at the end of the response.</summary>
    private async ValueTask<bool> FillAsync(int count)
    {
        if (Buffered >= count) return true;
        byte[] buffer = Buffer;
        if (Buffered == 0)
        {
            _start = 0;
            _end = 0;
        }
        else if (_start + count > buffer.Length)
        {
            buffer.AsSpan(_start, Buffered).CopyTo(buffer);
            _end = Buffered;
            _start = 0;
        }
        while (Buffered < count)
        {
            int read = await _input.ReadAsync(buffer.AsMemory(_end), _cancellationToken).ConfigureAwait(false);
            if (read == 0) return false;
            _end += read;
        }
        return true;
    }

    /// <summary>Like <see cref="FillAsync"/> inside a frame, where the end of the response is a broken stream.</summary>
    private async ValueTask FillExactlyAsync(int count)
    {
        if (!await FillAsync(count).ConfigureAwait(false))
            throw new EndOfStreamException("The server ended the stream inside a reply.");
    }

    /// <summary>Fills <paramref name="destination"/>: first from the buffer, then straight from the connection.</summary>
    private async ValueTask ReadExactlyAsync(Memory<byte> destination)
    {
        int fromBuffer = Math.Min(Buffered, destination.Length);
        Buffer.AsSpan(_start, fromBuffer).CopyTo(destination.Span);
        _start += fromBuffer;
        destination = destination[fromBuffer..];
        if (destination.IsEmpty) return;
        // Small remainders go through the buffer (one read may then bring the next frames too); large ones not.
        if (destination.Length < BufferSize / 4)
        {
            await FillExactlyAsync(destination.Length).ConfigureAwait(false);
            Buffer.AsSpan(_start, destination.Length).CopyTo(destination.Span);
            _start += destination.Length;
            return;
        }
        try
        {
            await _input.ReadExactlyAsync(destination, _cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            throw new EndOfStreamException("The server ended the stream inside a reply.", e);
        }
    }

    private async ValueTask SkipAsync(long count)
    {
        while (count > 0)
        {
            if (Buffered == 0) await FillExactlyAsync(1).ConfigureAwait(false);
            int step = (int)Math.Min(count, Buffered);
            _start += step;
            count -= step;
        }
    }
}
