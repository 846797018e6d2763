using System.Buffers;

namespace ParamDb.Protocol;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over one buffer rented from <see cref="ArrayPool{T}.Shared"/>, grown by
/// doubling; <see cref="Detach"/> hands the buffer to the caller, <see cref="Dispose"/> returns it otherwise.
/// </summary>
public sealed class PooledArrayWriter : IBufferWriter<byte>, IDisposable
{
    private byte[]? _buffer;
    private int _written;

    /// <summary>Rents at least <paramref name="capacity"/> bytes up front; size it so it never grows.</summary>
    public PooledArrayWriter(int capacity) => _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, 256));

    /// <summary>Bytes written so far.</summary>
    public int WrittenCount => _written;

    /// <summary>The bytes written so far.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => Buffer.AsMemory(0, _written);

    /// <summary>Forgets what was written, keeping the buffer.</summary>
    public void Clear() => _written = 0;

    /// <inheritdoc />
    public void Advance(int count)
    {
        if (count < 0 || _written + count > Buffer.Length) throw new ArgumentOutOfRangeException(nameof(count));
        _written += count;
    }

    /// <inheritdoc />
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return Buffer.AsMemory(_written);
    }

    /// <inheritdoc />
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return Buffer.AsSpan(_written);
    }

    /// <summary>Gives the rented buffer (now the caller's to return) and the bytes written into it.</summary>
    public byte[] Detach(out int length)
    {
        byte[] buffer = Buffer;
        length = _written;
        _buffer = null;
        return buffer;
    }

    /// <summary>Returns the buffer to the pool, unless it was detached.</summary>
    public void Dispose()
    {
        byte[]? buffer = _buffer;
        _buffer = null;
        if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
    }

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(PooledArrayWriter));

    private void Ensure(int sizeHint)
    {
        int needed = _written + Math.Max(sizeHint, 1);
        if (needed <= Buffer.Length) return;
        byte[] larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(Array.MaxLength, Math.Max((long)needed, 2L * Buffer.Length)));
        Buffer.AsSpan(0, _written).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(Buffer);
        _buffer = larger;
    }
}
