using System.Buffers;

namespace ParamDb.Server.Http;

/// <summary>An <see cref="IBufferWriter{T}"/> that appends to a <see cref="PooledBuffer"/>, for building JSON replies.</summary>
public sealed class PooledBufferWriter(PooledBuffer buffer) : IBufferWriter<byte>
{
    /// <inheritdoc />
    public void Advance(int count) => buffer.Length += count;

    /// <inheritdoc />
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return buffer.Array.AsMemory(buffer.Length);
    }

    /// <inheritdoc />
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return buffer.Array.AsSpan(buffer.Length);
    }

    private void Ensure(int sizeHint)
    {
        int need = buffer.Length + Math.Max(sizeHint, 256);
        if (need > buffer.Capacity) buffer.EnsureCapacity(Math.Max(need, buffer.Capacity * 2));
    }
}
