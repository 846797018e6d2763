using ParamDb.Server.Hosting;

namespace ParamDb.Server.Tests;

/// <summary>The gate a restore closes: it drains the requests inside and holds new ones until it opens.</summary>
public sealed class StoreGateTests
{
    [Fact]
    public async Task CloseWaitsForThePassesInsideAndNewPassesWaitForOpen()
    {
        var gate = new StoreGate();
        StoreGate.Pass first = await gate.EnterAsync(CancellationToken.None);
        StoreGate.Pass second = await gate.EnterAsync(CancellationToken.None);
        Assert.Equal(2, gate.Active);

        Task drained = gate.CloseAsync();
        Task<StoreGate.Pass> waiting = gate.EnterAsync(CancellationToken.None).AsTask();
        first.Dispose();
        Assert.False(drained.IsCompleted);
        second.Dispose();
        await drained.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(waiting.IsCompleted);   // still closed
        Assert.Equal(0, gate.Active);

        gate.Open();
        using StoreGate.Pass third = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, gate.Active);
    }

    [Fact]
    public async Task AClosedGateWithNobodyInsideIsDrainedAtOnceAndAWaiterCanGiveUp()
    {
        var gate = new StoreGate();
        Assert.True(gate.CloseAsync().IsCompletedSuccessfully);
        Assert.Throws<InvalidOperationException>(() => { _ = gate.CloseAsync(); });
        using var give = new CancellationTokenSource();
        Task<StoreGate.Pass> waiting = gate.EnterAsync(give.Token).AsTask();
        await give.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(0, gate.Active);
        gate.Open();
        using var pass = await gate.EnterAsync(CancellationToken.None);
        Assert.Equal(1, gate.Active);
    }
}
