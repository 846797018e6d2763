using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Client.Internal;

namespace ParamDb.Client.Streaming;

/// <summary>
/// Writes request frames (layout in <see cref="StreamRequestHeader"/>) into the HTTP/2 request stream. Small frames
/// are copied into one 64 KiB batch so a burst of pulls becomes a few large writes; a frame over 16 KiB has its
/// header batched and its keys and values written straight from the caller's memory, with no copy.
/// Nothing reaches the network before <see cref="FlushAsync"/> except full batches and large frames: the writer
/// loop flushes when it has nothing more to send, not after every frame. One instance per writer loop; not thread-safe.
/// </summary>
internal sealed class RequestFrameWriter : IDisposable
{
    private const int BatchSize = 64 * 1024;

    // Above this a frame's body is written from the caller's memory: copying it into the batch would cost a
    // memcpy of its size for nothing, since it fills whole HTTP/2 DATA frames (16 KiB by default) by itself.
    private const int CopyLimit = 16 * 1024;

    private readonly Stream _output;
    private byte[]? _batch = ArrayPool<byte>.Shared.Rent(BatchSize);
    private int _used;
    private readonly MemoryBytes<ulong> _keyBytes = new(default);
    private readonly MemoryBytes<float> _valueBytes = new(default);

    public RequestFrameWriter(Stream output) => _output = output;

    private byte[] Batch => _batch ?? throw new ObjectDisposedException(nameof(RequestFrameWriter));

    /// <summary>
    /// Writes one request. When this returns, the caller's keys and values have been read (copied into the batch or
    /// written to the stream), so the request may complete and its memory be reused.
    /// </summary>
    public async ValueTask WriteAsync(PendingRequest request, CancellationToken cancellationToken)
    {
        int prefixLength = StreamRequestHeader.Size + StreamRequestHeader.Pad8(Encoding.UTF8.GetByteCount(request.Table)) + (request.RingEpoch != 0 ? sizeof(ulong) : 0);
        long blockLength = BlockLength(request);
        if (request.Lz4 && request.Op != StreamOp.Tick)
        {
            await WriteCompressedAsync(request, prefixLength, (int)blockLength, cancellationToken).ConfigureAwait(false);
            return;
        }
        long frameLength = prefixLength + blockLength;
        if (frameLength <= CopyLimit)
        {
            await ReserveAsync((int)frameLength, cancellationToken).ConfigureAwait(false);
            Span<byte> frame = Batch.AsSpan(_used, (int)frameLength);
            WritePrefix(frame, request, blockLength);
            if (request.Op != StreamOp.Tick) WriteBlock(frame[prefixLength..], request);
            _used += (int)frameLength;
            return;
        }

        // Large: header, KV header and a range's first key in the batch; keys and values from the caller's memory.
        int headLength = prefixLength + KvBlock.HeaderSize + (request.Range ? 8 : 0);
        await ReserveAsync(headLength, cancellationToken).ConfigureAwait(false);
        Span<byte> head = Batch.AsSpan(_used, headLength);
        WritePrefix(head, request, blockLength);
        WriteKvHead(head[prefixLength..], request);
        _used += headLength;
        await WriteBatchAsync(cancellationToken).ConfigureAwait(false);
        if (!request.Range && request.Count > 0)
            await _output.WriteAsync(_keyBytes.Reset(request.Keys).Memory, cancellationToken).ConfigureAwait(false);
        if (request.Op == StreamOp.Push && request.Values.Length > 0)
            await _output.WriteAsync(_valueBytes.Reset(request.Values).Memory, cancellationToken).ConfigureAwait(false);
        _keyBytes.Reset(ReadOnlyMemory<ulong>.Empty);
        _valueBytes.Reset(ReadOnlyMemory<float>.Empty);
    }

    /// <summary>Writes what is batched and flushes the stream, so the server sees every frame written so far.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await WriteBatchAsync(cancellationToken).ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        byte[]? batch = _batch;
        _batch = null;
        if (batch is not null) ArrayPool<byte>.Shared.Return(batch);
    }

    /// <summary>Bytes of the request's KV block before any compression; 0 for a tick.</summary>
    public static long BlockLength(PendingRequest request) => request.Op switch
    {
        StreamOp.Tick => 0,
        StreamOp.Push => KvBlockWriter.SizeOf(request.Range, request.Count, request.Dim, values: true),
        _ => KvBlockWriter.SizeOf(request.Range, request.Count, request.Dim, values: false),
    };

    private async ValueTask WriteCompressedAsync(PendingRequest request, int prefixLength, int blockLength, CancellationToken cancellationToken)
    {
        byte[] plain = ArrayPool<byte>.Shared.Rent(blockLength);
        byte[] frame;
        int frameLength;
        try
        {
            WriteBlock(plain.AsSpan(0, blockLength), request);
            frame = Lz4Frames.Encode(plain.AsSpan(0, blockLength), prefixLength, out frameLength);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(plain);
        }
        try
        {
            WritePrefix(frame, request, frameLength - prefixLength);
            if (frameLength <= CopyLimit)
            {
                await ReserveAsync(frameLength, cancellationToken).ConfigureAwait(false);
                frame.AsSpan(0, frameLength).CopyTo(Batch.AsSpan(_used));
                _used += frameLength;
            }
            else
            {
                await WriteBatchAsync(cancellationToken).ConfigureAwait(false);
                await _output.WriteAsync(frame.AsMemory(0, frameLength), cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    /// <summary>Makes room for <paramref name="length"/> (≤ 64 KiB) contiguous bytes in the batch.</summary>
    private async ValueTask ReserveAsync(int length, CancellationToken cancellationToken)
    {
        if (_used + length > Batch.Length) await WriteBatchAsync(cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask WriteBatchAsync(CancellationToken cancellationToken)
    {
        if (_used == 0) return;
        int used = _used;
        _used = 0;
        await _output.WriteAsync(Batch.AsMemory(0, used), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The frame header and the zero-padded table name.</summary>
    private static void WritePrefix(Span<byte> destination, PendingRequest request, long payloadLength)
    {
        Span<byte> name = stackalloc byte[TableNames.MaxLength];
        int nameLength = Encoding.UTF8.GetBytes(request.Table, name);
        var flags = request.Lz4 && request.Op != StreamOp.Tick ? StreamFrameFlags.Lz4 : StreamFrameFlags.None;
        StreamRequestHeader.Write(destination, request.Id, request.Op, flags, name[..nameLength],
            request.Stamp.Worker, request.Staleness, request.Stamp.Clock, payloadLength, request.RingEpoch);
    }

    /// <summary>The whole KV block: a push with its values, a pull without.</summary>
    private static void WriteBlock(Span<byte> destination, PendingRequest request)
    {
        bool values = request.Op == StreamOp.Push;
        if (request.Range) KvBlockWriter.WriteRange(destination, request.First, request.Count, request.Values.Span, request.Dim, values);
        else KvBlockWriter.Write(destination, request.Keys.Span, request.Values.Span, request.Dim, values);
    }

    /// <summary>The KV header, and a range's first key: what precedes the keys and values written from caller memory.</summary>
    private static void WriteKvHead(Span<byte> destination, PendingRequest request)
    {
        var flags = (request.Range ? KvFlags.Range : KvFlags.None) | (request.Op == StreamOp.Push ? KvFlags.Values : KvFlags.None);
        KvBlockWriter.WriteHeader(destination, flags, request.Dim, request.Count);
        if (request.Range) BinaryPrimitives.WriteUInt64LittleEndian(destination[KvBlock.HeaderSize..], request.First);
    }
}
