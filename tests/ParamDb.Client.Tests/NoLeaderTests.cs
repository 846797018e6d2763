using ParamDb.Protocol;
using ParamDb.Testing;

namespace ParamDb.Client.Tests;

/// <summary>
/// A cluster between leaders answers metadata writes 503 <c>no_leader</c> and changes nothing; the client waits that
/// out (<see cref="ParamDbClientOptions.NoLeaderWait"/>) instead of failing the call.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NoLeaderTests
{
    private static readonly TableSchema Schema = new() { Dim = 2 };

    [Fact]
    public async Task ACreateWaitsForALeaderAndSucceedsOnceAMajorityIsBack()
    {
        await using LocalCluster cluster = await ClusterFixture.StartClusterAsync();
        await cluster.StopNodeAsync(1);
        await cluster.StopNodeAsync(2);

        using var impatient = new ParamDbClient(cluster.Http(3), new ParamDbClientOptions { NoLeaderWait = TimeSpan.Zero });
        var refused = await Assert.ThrowsAsync<ParamDbException>(() => impatient.CreateTableAsync("t", Schema));
        Assert.Equal((503, ProblemCodes.NoLeader), (refused.Status, refused.Code));

        using var patient = new ParamDbClient(cluster.Http(3), new ParamDbClientOptions { NoLeaderWait = TimeSpan.FromSeconds(120) });
        Task<TableInfo> create = patient.CreateTableAsync("t", Schema);
        // One of three nodes cannot elect a leader: the call is still waiting after several Retry-After rounds.
        await Task.WhenAny(create, Task.Delay(TimeSpan.FromSeconds(3)));
        Assert.False(create.IsCompleted);

        await cluster.RestartNodeAsync(1);
        TableInfo created = await create.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(("t", 2), (created.Name, created.Schema.Dim));
        // The node that came back knows the table (its own view: n2 is still down, so no sum over the nodes).
        using HttpClient n1 = cluster.Client(1);
        Assert.Contains("\"dim\":2", await n1.GetStringAsync("v1/tables/t?scope=node"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACallThatOutlastsItsWaitThrowsNoLeader()
    {
        await using LocalCluster cluster = await ClusterFixture.StartClusterAsync();
        await cluster.StopNodeAsync(1);
        await cluster.StopNodeAsync(2);
        using var client = new ParamDbClient(cluster.Http(3), new ParamDbClientOptions { NoLeaderWait = TimeSpan.FromSeconds(2) });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<ParamDbException>(() => client.CreateTableAsync("t", Schema));
        Assert.Equal(ProblemCodes.NoLeader, refused.Code);
        // Ends with the problem rather than waiting on: each try is a few seconds at most (the node waits up to 5 s
        // for a leader before it answers), and no new try starts once its Retry-After would pass the 2 s wait.
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(30));
    }
}
