using System.Net;
using System.Net.Http.Json;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>Bad joins, lost leaders and strangers get a clear answer, and change nothing (docs/cluster.md).</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterFaultTests
{
    [Fact]
    public async Task JoiningWithAnIdThatIsTakenIs409AndTheRingStaysAsItWas()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(2);
        using HttpClient n2 = cluster.Client(2);
        using var reply = await n2.PostAsJsonAsync("v1/cluster/nodes",
            Stranger("n1"), ProtocolJson.Default.JoinRequest);
        string detail = await Wire.AssertProblemAsync(reply, 409, ProblemCodes.NodeIdTaken);
        Assert.Contains("'n1'", detail);
        ClusterView view = await cluster.ViewAsync(1);
        Assert.Equal((2UL, 2), (view.Epoch, view.Nodes.Count));
    }

    [Fact]
    public async Task JoiningACLusterThatHoldsTablesIs409()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(2);
        using HttpClient n1 = cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        using var reply = await n1.PostAsJsonAsync("v1/cluster/nodes",
            Stranger(), ProtocolJson.Default.JoinRequest);
        await Wire.AssertProblemAsync(reply, 409, ProblemCodes.ClusterNotEmpty);
        Assert.Equal(2, (await cluster.ViewAsync(2)).Nodes.Count);
    }

    [Fact]
    public async Task ClusterInitOrJoinOnAFolderThatBelongsToAClusterIsRefused()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(2);
        await cluster.StopNodeAsync(2);
        var init = await Assert.ThrowsAsync<ClusterStartException>(() => cluster.StartNodeAsync(2, "--cluster-init"));
        Assert.Contains("belongs to cluster", init.Message);
        Assert.Contains("without --cluster-init", init.Message);
        var join = await Assert.ThrowsAsync<ClusterStartException>(() => cluster.StartNodeAsync(2, "--join", $"127.0.0.1:{cluster.BasePort}"));
        Assert.Contains("without --join", join.Message);
        await cluster.RestartNodeAsync(2);   // and with no flag it rejoins
        Assert.Equal(2, (await cluster.ViewAsync(2)).Nodes.Count);
    }

    [Fact]
    public async Task ANodeWhoseFolderBelongsToAnotherClusterIsRefused()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(2);
        string folder = cluster[2].DataDirectory;
        await cluster.StopNodeAsync(2);
        string identity = Path.Combine(folder, NodeIdentity.FileName);
        NodeIdentity ours = NodeIdentity.Load(folder)!;
        var stranger = ours with { ClusterId = Guid.NewGuid() };
        stranger.Save(folder);
        var e = await Assert.ThrowsAsync<ClusterStartException>(() => cluster.RestartNodeAsync(2));
        Assert.Contains($"belongs to cluster {stranger.ClusterId}", e.Message);
        Assert.Contains($"hold cluster {ours.ClusterId}", e.Message);
        ours.Save(folder);   // put back: it rejoins
        await cluster.RestartNodeAsync(2);
        Assert.Equal(2, (await cluster.ViewAsync(2)).Nodes.Count);
        Assert.True(File.Exists(identity));
    }

    [Fact]
    public async Task JoiningThroughANodeThatIsNotAMemberFailsNamingTheAddress()
    {
        await using RunningServer single = await RunningServer.StartAsync();
        string address = single.Http1Uri.Authority;
        string data = RunningServer.NewTempDirectory();
        try
        {
            int port = LoopbackPorts.Triple(1);
            var e = await Assert.ThrowsAsync<ClusterStartException>(() => RunningServer.StartAsync(data,
                "--listen", $"127.0.0.1:{port}", "--listen-h2", $"127.0.0.1:{port + 1}", "--node-id", "x", "--raft", $"127.0.0.1:{port + 2}", "--join", address));
            Assert.Contains($"--join {address}", e.Message);
            Assert.Contains(ProblemCodes.NotInCluster, e.Message);
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task MetadataWritesWithoutALeaderAre503NoLeaderWithRetryAfterAndChangeNothing()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(3);
        await cluster.StopNodeAsync(1);
        await cluster.StopNodeAsync(2);
        using HttpClient n3 = cluster.Client(3);
        using var reply = await n3.PutAsync("v1/tables/t", Wire.Json("""{"dim":1}"""));
        await Wire.AssertProblemAsync(reply, 503, ProblemCodes.NoLeader);
        Assert.True(reply.Headers.RetryAfter is { Delta: { } after } && after > TimeSpan.Zero);
        var list = await n3.GetFromJsonAsync("v1/tables?scope=node", ProtocolJson.Default.TableList);
        Assert.Empty(list!.Tables);
    }

    [Fact]
    public async Task ANodeThatDoesNotKnowATableAndHasNoLeaderAnswers503NotFalse404()
    {
        // A table created through one node may not have reached another yet; with no leader to check with, the
        // other node cannot vouch that it does not exist, so it must not say 404 (a client would give up on it).
        await using LocalCluster cluster = await LocalCluster.StartAsync(3);
        await cluster.StopNodeAsync(1);
        await cluster.StopNodeAsync(2);
        using HttpClient n3 = cluster.Client(3);
        using var get = await n3.GetAsync("v1/tables/t");
        await Wire.AssertProblemAsync(get, 503, ProblemCodes.NoLeader);
        Assert.True(get.Headers.RetryAfter is { Delta: { } after } && after > TimeSpan.Zero);
        using var push = await n3.PostAsync("v1/tables/t/push", Wire.Kv(Wire.PushBlock([1], [1f], 1)));
        await Wire.AssertProblemAsync(push, 503, ProblemCodes.NoLeader);
        using var pull = await n3.PostAsync("v1/tables/t/pull", Wire.Kv(Wire.PullBlock([1])));
        await Wire.AssertProblemAsync(pull, 503, ProblemCodes.NoLeader);
        // A name that cannot be a table is still refused as such, leader or not.
        using var invalid = await n3.GetAsync("v1/tables/star*");
        await Wire.AssertProblemAsync(invalid, 400, ProblemCodes.InvalidTableName);
    }

    [Fact]
    public async Task APeerWithoutTheSecretIsRefusedAndOneWithItIsServed()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(2, "--cluster-secret", "s3cret");
        using HttpClient n1 = cluster.Client(1);
        var join = Stranger();
        using var stranger = await n1.PostAsJsonAsync("v1/cluster/nodes", join, ProtocolJson.Default.JoinRequest);
        await Wire.AssertProblemAsync(stranger, 403, ProblemCodes.PeerRefused);

        var wrong = new HttpRequestMessage(HttpMethod.Get, "v1/tables") { Headers = { { PeerHttp.PeerHeader, "n9" }, { PeerHttp.SecretHeader, "guess" } } };
        using var refused = await n1.SendAsync(wrong);
        await Wire.AssertProblemAsync(refused, 403, ProblemCodes.PeerRefused);

        // The members themselves prove it on every link: a table made through node 2 reaches node 1.
        using HttpClient n2 = cluster.Client(2);
        await Wire.CreateTableAsync(n2, "t", """{"dim":1}""");
        await Wire.PushAsync(n2, "t", [1, 1 << 30], [1f, 2f], 1);
        Assert.Equal(new float[] { 1f, 2f }, await Wire.PullAsync(n1, "t", [1, 1 << 30]));
        Assert.Equal((2UL, 2), ((await cluster.ViewAsync(1)).Epoch, (await cluster.ViewAsync(1)).Nodes.Count));
    }

    [Fact]
    public async Task SnapshotsAndRestoresOnAClusterAre501AndNothingIsWritten()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(2);
        using HttpClient n1 = cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        using var snapshot = await n1.PostAsync("v1/snapshots", Wire.Json("""{"name":"s"}"""));
        await Wire.AssertProblemAsync(snapshot, 501, ProblemCodes.NotSupportedInCluster);
        using var restore = await n1.PostAsync("v1/snapshots/s/restore", Wire.Json("{}"));
        await Wire.AssertProblemAsync(restore, 501, ProblemCodes.NotSupportedInCluster);
        Assert.False(Directory.Exists(Path.Combine(cluster[1].DataDirectory, "snapshots", "s")));
    }

    [Fact]
    public async Task ASingleNodeAnswersGetClusterWithItselfAtEpochZero()
    {
        await using RunningServer single = await RunningServer.StartAsync();
        using HttpClient http = single.CreateClient();
        ClusterView view = (await http.GetFromJsonAsync("/v1/cluster", ProtocolJson.Default.ClusterView))!;
        Assert.Equal((0UL, 1, 64), (view.Epoch, view.Nodes.Count, view.Nodes[0].Tokens.Length));
        Assert.Equal(single.Http1Uri.Authority, view.Nodes[0].Http);
        ClusterRing ring = ClusterRing.FromView(view);
        Assert.Equal(0, ring.PrimaryOf(Ring.NameHash("t"), 42));
        using var join = await http.PostAsJsonAsync("/v1/cluster/nodes",
            Stranger(), ProtocolJson.Default.JoinRequest);
        await Wire.AssertProblemAsync(join, 404, ProblemCodes.NotInCluster);
    }

    /// <summary>A join request from a node at 127.0.0.9 that is not running: enough for what is refused before any contact.</summary>
    private static JoinRequest Stranger(string id = "n9") => new() { Id = id, Http = "127.0.0.9:7420", H2 = "127.0.0.9:7421", Raft = "127.0.0.9:7422" };
}
