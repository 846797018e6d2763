using System.Buffers;
using System.Runtime.InteropServices;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Client.Internal;

namespace ParamDb.Client.Streaming;

/// <summary>What reading one reply gave: the reply, or the error the request fails with.</summary>
/// <param name="Reply">The reply when <paramref name="Error"/> is null.</param>
/// <param name="Error">The server's refusal (<see cref="ParamDbException"/>) or a reply that does not fit its request
/// (<see cref="InvalidDataException"/>); the stream itself is still in step.</param>
internal readonly record struct ReplyOutcome(StreamReply Reply, Exception? Error);

/// <summary>
/// Reads reply frames (layout in <see cref="StreamReplyHeader"/>) from the response body through one pooled 64 KiB
/// buffer: headers and small payloads come from the buffer, and a plain pull reply's values are read from the
/// connection straight into the caller's destination. Exceptions mean the stream is broken (transport, or a frame
/// that cannot be parsed); a reply that is well framed but wrong for its request is a <see cref="ReplyOutcome"/>
/// error and the stream goes on. One instance per reader loop; not thread-safe.
/// </summary>
internal sealed partial class ReplyReader : IDisposable
{
    private const int BufferSize = 64 * 1024;

    // Error JSON and push replies are a few hundred bytes; anything this large that is not a pull is not ours.
    private const int MaxBufferedPayload = 16 * 1024 * 1024;

    private readonly Stream _input;
    private readonly CancellationToken _cancellationToken;
    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    private int _start;
    private int _end;
    private readonly MemoryBytes<float> _destinationBytes = new(default);

    public ReplyReader(Stream input, CancellationToken cancellationToken)
    {
        _input = input;
        _cancellationToken = cancellationToken;
    }

    /// <summary>The header read by the last successful <see cref="NextHeaderAsync"/>.</summary>
    public StreamReplyHeader Header { get; private set; }

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(ReplyReader));

    private int Buffered => _end - _start;

    /// <summary>Reads the next reply header; false when the server ended the response between frames.</summary>
    /// <exception cref="EndOfStreamException">The response ended inside a frame.</exception>
    /// <exception cref="InvalidDataException">The header cannot be parsed, so the stream is out of step.</exception>
    public async ValueTask<bool> NextHeaderAsync()
    {
        if (!await FillAsync(StreamReplyHeader.Size).ConfigureAwait(false))
        {
            if (Buffered == 0) return false;
            throw new EndOfStreamException($"The server ended the stream {Buffered} bytes into a reply header.");
        }
        if (!StreamReplyHeader.TryParse(Buffer.AsSpan(_start, StreamReplyHeader.Size), out var header, out string? error))
            throw new InvalidDataException($"The server sent a reply frame that cannot be parsed: {error}");
        _start += StreamReplyHeader.Size;
        Header = header;
        return true;
    }

    /// <summary>Skips the payload of a reply nobody waits for (its call was cancelled).</summary>
    public ValueTask SkipPayloadAsync() => SkipAsync(Header.PayloadLength);

    /// <summary>Reads a stream-level error (request id 0): the problem the server ended the stream with.</summary>
    public async ValueTask<ParamDbException> ReadStreamErrorAsync()
    {
        var outcome = await ReadBufferedAsync(null).ConfigureAwait(false);
        return outcome.Error as ParamDbException
            ?? new ParamDbException(Header.Status, $"http_{Header.Status}", "The server ended the stream with an error reply that could not be read.");
    }

    /// <summary>Reads the payload of the current reply for <paramref name="request"/>.</summary>
    public ValueTask<ReplyOutcome> ReadPayloadAsync(PendingRequest request)
    {
        bool plainPull = Header.Status == 200 && request.Op == StreamOp.Pull && (Header.Flags & StreamFrameFlags.Lz4) == 0;
        return plainPull ? ReadPullAsync(request) : ReadBufferedAsync(request);
    }

    public void Dispose()
    {
        byte[]? buffer = _buffer;
        _buffer = null;
        if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
    }

    /// <summary>
    /// A plain pull reply, streamed: the KV header and keys are checked against the request through the buffer,
    /// then the values go from the connection into the destination (or a new array of the reply's dim).
    /// </summary>
    private async ValueTask<ReplyOutcome> ReadPullAsync(PendingRequest request)
    {
        long left = Header.PayloadLength;
        if (left < KvBlock.HeaderSize)
            return await FailAfterSkipAsync(left, $"it is {left} bytes, shorter than a KV header").ConfigureAwait(false);
        await FillExactlyAsync(KvBlock.HeaderSize).ConfigureAwait(false);
        string? why = CheckPullHead(Buffer.AsSpan(_start, KvBlock.HeaderSize), request, left, out int dim);
        if (why is not null) return await FailAfterSkipAsync(left, why).ConfigureAwait(false);
        _start += KvBlock.HeaderSize;
        left -= KvBlock.HeaderSize;

        int keyBytes = request.Range ? 8 : request.Count * 8;
        bool keysMatch = await MatchKeysAsync(request, keyBytes).ConfigureAwait(false);
        left -= keyBytes;
        if (!keysMatch) return await FailAfterSkipAsync(left, "its keys are not the keys that were asked for").ConfigureAwait(false);

        float[]? values = null;
        Memory<float> destination = request.Destination;
        if (request.Dim == 0)
        {
            values = request.Count == 0 ? [] : new float[checked(request.Count * dim)];
            destination = values;
        }
        await ReadExactlyAsync(_destinationBytes.Reset(destination).Memory).ConfigureAwait(false);
        _destinationBytes.Reset(Memory<float>.Empty);
        return new ReplyOutcome(new StreamReply(0, 0, Header.Clock, values), null);
    }

    /// <summary>Compares the reply's keys (a range's first key, or every key) with the request's, chunk by chunk.</summary>
    private async ValueTask<bool> MatchKeysAsync(PendingRequest request, int keyBytes)
    {
        bool same = true;
        int done = 0;
        while (done < keyBytes)
        {
            // Whole keys per chunk, at most the buffer.
            int chunk = Math.Min(keyBytes - done, BufferSize & ~7);
            await FillExactlyAsync(chunk).ConfigureAwait(false);
            ReadOnlySpan<byte> reply = Buffer.AsSpan(_start, chunk);
            if (same)
            {
                same = request.Range
                    ? MemoryMarshal.Read<ulong>(reply) == request.First
                    : reply.SequenceEqual(MemoryMarshal.AsBytes(request.Keys.Span.Slice(done / 8, chunk / 8)));
            }
            _start += chunk;
            done += chunk;
        }
        return same;
    }

    /// <summary>Checks a pull reply's KV header against its request; null when it fits, else why not.</summary>
    private static string? CheckPullHead(ReadOnlySpan<byte> head, PendingRequest request, long payloadLength, out int dim)
    {
        dim = 0;
        if (!KvBlock.TryReadHeader(head, out KvFlags flags, out uint replyDim, out ulong replyCount, out ProtocolError error))
            return error.Detail.TrimEnd('.');
        var expectedFlags = KvFlags.Values | (request.Range ? KvFlags.Range : KvFlags.None);
        if (flags != expectedFlags) return $"its flags are {flags}; a reply to this pull has {expectedFlags}";
        if (replyCount != (ulong)request.Count) return $"it has {replyCount} rows; {request.Count} were asked for";
        if (request.Dim > 0 && replyDim != (uint)request.Dim) return $"its rows have dim {replyDim}; the destination holds rows of {request.Dim}";
        if (replyDim > TableSchema.MaxDim || (replyDim == 0 && request.Count > 0) || (long)replyDim * request.Count > Array.MaxLength)
            return $"{request.Count} rows of dim {replyDim} do not fit in one array";
        long expected = KvBlockWriter.SizeOf(request.Range, request.Count, (int)replyDim, values: true);
        if (payloadLength != expected) return $"it is {payloadLength} bytes; {request.Count} rows of dim {replyDim} take {expected}";
        dim = (int)replyDim;
        return null;
    }

    private async ValueTask<ReplyOutcome> FailAfterSkipAsync(long left, string why)
    {
        await SkipAsync(left).ConfigureAwait(false);
        return new ReplyOutcome(default, BadReply(why));
    }

    private static InvalidDataException BadReply(string why) => new($"The server's reply does not fit its request: {why}.");
}
