using System.Buffers;

namespace ParamDb.Server.Http;

/// <summary>
/// A byte buffer rented from <see cref="ArrayPool{T}.Shared"/> with its used length. One per request
/// body or reply; returned on dispose, so a 4 MiB push does not allocate 4 MiB each time.
/// </summary>
public sealed class PooledBuffer : IDisposable
{
    private byte[]? _array;

    /// <summary>Rents at least <paramref name="capacity"/> bytes.</summary>
    public PooledBuffer(int capacity) => _array = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, 16));

    /// <summary>Bytes in use.</summary>
    public int Length { get; set; }

    /// <summary>The rented capacity.</summary>
    public int Capacity => Array.Length;

    /// <summary>The whole rented array.</summary>
    public byte[] Array => _array ?? throw new ObjectDisposedException(nameof(PooledBuffer));

    /// <summary>The bytes in use.</summary>
    public Span<byte> Span => Array.AsSpan(0, Length);

    /// <summary>The bytes in use.</summary>
    public Memory<byte> Memory => Array.AsMemory(0, Length);

    /// <summary>Grows to at least <paramref name="capacity"/>, keeping the used bytes.</summary>
    public void EnsureCapacity(int capacity)
    {
        if (capacity <= Array.Length) return;
        var bigger = ArrayPool<byte>.Shared.Rent(capacity);
        Array.AsSpan(0, Length).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(Array);
        _array = bigger;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        var array = Interlocked.Exchange(ref _array, null);
        if (array is not null) ArrayPool<byte>.Shared.Return(array);
    }
}
