using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace ParamDb.Server.Http;

/// <summary>
/// The memory pool behind Kestrel's connection pipes, with 64 KiB blocks instead of Kestrel's 4 KiB.
/// The socket transport receives into one block per call, so a 4 MiB push took ~1,000 receive calls and pipe
/// hand-offs; with 64 KiB blocks it takes ~64. Measured on the 2-core machine (docs/benchmarks.md): W-sparse
/// push 1.0 → 1.8–2.2 M keys/s, W-dense push 245 → 380 MB/s, pulls unchanged.
/// </summary>
/// <remarks>
/// Blocks are pinned (on the pinned object heap) because sockets hand them to the kernel. Returned blocks are
/// kept for reuse up to <see cref="MaxRetainedBlocks"/> (64 MiB); beyond that they are left to the GC, so a
/// burst of connections does not pin memory for good. Thread-safe: Kestrel rents and returns from any thread.
/// </remarks>
public sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    /// <summary>Bytes per block.</summary>
    public const int BlockSize = 64 * 1024;

    /// <summary>Most idle blocks kept for reuse: 1,024 × 64 KiB = 64 MiB.</summary>
    public const int MaxRetainedBlocks = 1024;

    private readonly ConcurrentQueue<Block> _idle = new();

    /// <inheritdoc />
    public override int MaxBufferSize => BlockSize;

    /// <summary>Idle blocks held for reuse.</summary>
    public int RetainedBlocks => _idle.Count;

    /// <inheritdoc />
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        // Pipes never ask for more than MaxBufferSize; a larger request is a caller bug, as in Kestrel's own pool.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        return _idle.TryDequeue(out var block) ? block.Lease() : new Block(this).Lease();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing) => _idle.Clear();

    private void Return(Block block)
    {
        if (_idle.Count < MaxRetainedBlocks) _idle.Enqueue(block);
    }

    /// <summary>One pinned block; it is its own owner, so renting allocates nothing once blocks are warm.</summary>
    private sealed class Block(LargeBlockMemoryPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);
        private int _leased;

        public Memory<byte> Memory => _array;

        public Block Lease()
        {
            _leased = 1;
            return this;
        }

        public void Dispose()
        {
            // A second Dispose of one lease must not put the block in the queue twice.
            if (Interlocked.Exchange(ref _leased, 0) == 1) pool.Return(this);
        }
    }
}

/// <summary>Gives Kestrel (which asks DI for an <see cref="IMemoryPoolFactory{T}"/>) the <see cref="LargeBlockMemoryPool"/>.</summary>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    /// <inheritdoc />
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool();
}
