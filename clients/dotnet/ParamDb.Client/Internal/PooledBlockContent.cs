using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using ParamDb.Protocol;

namespace ParamDb.Client.Internal;

/// <summary>
/// A request body over a buffer rented from <see cref="ArrayPool{T}.Shared"/>; the content owns the buffer
/// and returns it once it is disposed and no send is still writing from it.
/// </summary>
/// <remarks>
/// Why the count: HTTP/2 may still be sending the body after the reply has arrived (a server that refuses
/// early), and a connection retry may serialize the body twice. The buffer goes back to the pool only when
/// the owner's reference and every in-flight write are released, so the pool never hands out bytes that are
/// still being sent.
/// </remarks>
internal sealed class PooledBlockContent : HttpContent
{
    private static readonly MediaTypeHeaderValue KvMediaType = new(MediaTypes.KvBlock);

    private byte[]? _buffer;
    private readonly int _length;
    private int _references = 1; // the owner's; each running serialization adds one
    private bool _disposed;

    /// <summary>Takes ownership of <paramref name="rented"/>, whose first <paramref name="length"/> bytes are the body.</summary>
    public PooledBlockContent(byte[] rented, int length, bool lz4)
    {
        _buffer = rented;
        _length = length;
        Headers.ContentType = KvMediaType;
        if (lz4) Headers.ContentEncoding.Add(MediaTypes.Lz4Encoding);
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        byte[] buffer = Acquire();
        try
        {
            await stream.WriteAsync(buffer.AsMemory(0, _length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Release();
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        byte[] buffer = Acquire();
        try
        {
            stream.Write(buffer, 0, _length);
        }
        finally
        {
            Release();
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _length;
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            Release();
        }
        base.Dispose(disposing);
    }

    private byte[] Acquire()
    {
        while (true)
        {
            int references = Volatile.Read(ref _references);
            if (references == 0) throw new ObjectDisposedException(nameof(PooledBlockContent));
            if (Interlocked.CompareExchange(ref _references, references + 1, references) == references)
                return _buffer!;
        }
    }

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0) return;
        byte[]? buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
    }
}
