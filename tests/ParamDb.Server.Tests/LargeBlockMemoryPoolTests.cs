using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using ParamDb.Server.Http;

namespace ParamDb.Server.Tests;

public sealed class LargeBlockMemoryPoolTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public void KestrelGetsTheLargeBlockPool()
    {
        var factory = fixture.Server.Services.GetRequiredService<IMemoryPoolFactory<byte>>();
        using var pool = factory.Create();
        Assert.IsType<LargeBlockMemoryPool>(pool);
        Assert.Equal(64 * 1024, pool.MaxBufferSize);
    }

    [Fact]
    public void ReturnedBlocksAreReusedOnceEach()
    {
        using var pool = new LargeBlockMemoryPool();
        var first = pool.Rent(100);
        Assert.Equal(LargeBlockMemoryPool.BlockSize, first.Memory.Length);
        first.Memory.Span[0] = 42;
        first.Dispose();
        first.Dispose(); // a double return must not queue the block twice
        Assert.Equal(1, pool.RetainedBlocks);
        var second = pool.Rent();
        Assert.Equal(42, second.Memory.Span[0]);
        Assert.Equal(0, pool.RetainedBlocks);
        var third = pool.Rent();
        Assert.NotSame(second, third);
    }

    [Fact]
    public void RetentionIsBounded()
    {
        using var pool = new LargeBlockMemoryPool();
        var blocks = Enumerable.Range(0, LargeBlockMemoryPool.MaxRetainedBlocks + 10).Select(_ => pool.Rent()).ToList();
        foreach (var b in blocks) b.Dispose();
        Assert.Equal(LargeBlockMemoryPool.MaxRetainedBlocks, pool.RetainedBlocks);
    }

    [Fact]
    public void AskingForMoreThanABlockThrows()
    {
        using var pool = new LargeBlockMemoryPool();
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(LargeBlockMemoryPool.BlockSize + 1));
    }
}
