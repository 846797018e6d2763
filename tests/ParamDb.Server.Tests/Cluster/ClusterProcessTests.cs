using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Three real <c>paramdb</c> processes on 127.0.0.1–3 (docs/cluster.md): they form a cluster, lose their Raft leader
/// to SIGKILL and take metadata writes again, and a killed node restarts with no flags and still has its rows.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterProcessTests(ITestOutputHelper output) : IDisposable
{
    private readonly ProcessCluster _cluster = new(3);

    [Fact]
    public async Task ThreeProcessesFormSurviveTheLeadersDeathAndARestartedNodeKeepsItsRows()
    {
        try
        {
            await FormKillAndRestartAsync();
        }
        catch
        {
            // The nodes' logs say what the cluster did; the folder is deleted afterwards.
            foreach (string tail in _cluster.LogTails()) output.WriteLine(tail);
            throw;
        }
    }

    private async Task FormKillAndRestartAsync()
    {
        var clock = Stopwatch.StartNew();
        for (int i = 1; i <= 3; i++) await StartAsync(i, i == 1 ? ["--cluster-init"] : _cluster.Join);
        ClusterView view = await WaitAsync(1, v => v.Nodes.Count == 3 && v.Nodes.All(n => n.State == NodeState.Up), "three nodes up");
        double formed = clock.Elapsed.TotalSeconds;
        output.WriteLine($"formed: three processes started one after the other and up in the ring in {formed:F1} s");
        Assert.True(formed < 30, $"the cluster took {formed:F1} s to form");

        // Acknowledged pushes through one node, in wal mode (the default): each key k holds k mod 97.
        using HttpClient n2 = Client(2);
        await Wire.CreateTableAsync(n2, "t", """{"dim":1}""");
        ulong[] keys = [.. Enumerable.Range(0, 3000).Select(i => (ulong)i * 7919 << 8)];
        float[] values = [.. keys.Select(k => (float)(k % 97))];
        await Wire.PushAsync(n2, "t", keys, values, 1);

        // SIGKILL the Raft leader: a survivor takes metadata writes again.
        int leader = int.Parse(view.Leader![1..]);
        int survivor = leader % 3 + 1;
        await _cluster[leader]!.KillAsync();
        clock.Restart();
        using HttpClient other = Client(survivor);
        HttpStatusCode status = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            using var reply = await other.PutAsync("v1/tables/after", Wire.Json("""{"dim":1}"""));
            status = reply.StatusCode;
            if (status == HttpStatusCode.Created) break;
            await Task.Delay(20);
        }
        output.WriteLine($"metadata writes through node n{survivor} succeeded again {clock.Elapsed.TotalMilliseconds:F0} ms after the leader n{leader} was killed");
        Assert.Equal(HttpStatusCode.Created, status);

        // The killed node restarts with no cluster flags, rejoins, and its rows are all there.
        clock.Restart();
        await StartAsync(leader);
        await WaitAsync(leader, v => v.Nodes.Count == 3, "the restarted node back in the ring");
        output.WriteLine($"node n{leader} restarted and rejoined in {clock.Elapsed.TotalSeconds:F1} s");
        using HttpClient n1 = Client(leader);
        Assert.Equal(values, await Wire.PullAsync(n1, "t", keys));
        using var tables = await n1.GetAsync("v1/tables/after");
        Assert.Equal(HttpStatusCode.OK, tables.StatusCode);   // created while it was down: it caught up
    }

    private Task StartAsync(int i, params string[] args) =>
        _cluster.StartAsync(i, null, ["--checkpoint-interval", "0", "--Logging:LogLevel:ParamDb.Cluster=Debug", "--Logging:LogLevel:DotNext=Information", .. args]);

    private HttpClient Client(int i) => _cluster.Client(i);

    private async Task<ClusterView> WaitAsync(int i, Func<ClusterView, bool> done, string what)
    {
        using HttpClient http = Client(i);
        var deadline = Stopwatch.StartNew();
        ClusterView? view = null;
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                view = await http.GetFromJsonAsync("v1/cluster", ProtocolJson.Default.ClusterView);
                if (view is not null && done(view)) return view;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"Waited 60 s for {what}; the last view had {view?.Nodes.Count} nodes.");
    }

    public void Dispose() => _cluster.Dispose();
}
