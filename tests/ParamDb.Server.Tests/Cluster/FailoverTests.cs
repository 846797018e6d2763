using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Failover on real processes (docs/replication.md): three nodes at R = 2; a node killed with SIGKILL is declared
/// down, its arcs are served by their backups, a clocked worker that retries each push until it is acknowledged
/// loses nothing and applies nothing twice, and the killed node comes back as a backup, catches up, and serves again.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class FailoverTests(ITestOutputHelper output) : IDisposable
{
    private readonly ProcessCluster _cluster = new(3);

    public void Dispose() => _cluster.Dispose();

    private async Task<ClusterView> ViewAsync(int i)
    {
        using HttpClient http = _cluster.Client(i);
        return (await http.GetFromJsonAsync("v1/cluster", ProtocolJson.Default.ClusterView))!;
    }

    private async Task WaitForAsync(int observer, string what, Func<ClusterView, bool> done)
    {
        long deadline = Environment.TickCount64 + 60_000;
        ClusterView? view = null;
        while (Environment.TickCount64 < deadline)
        {
            try
            {
                view = await ViewAsync(observer);
                if (done(view)) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50);
        }
        Assert.Fail($"Not within 60 s: {what}. Last view: {(view is null ? "none" : string.Join(", ", view.Nodes.Select(n => $"{n.Id} {n.State}")))}\n{string.Join("\n", _cluster.LogTails())}");
    }

    /// <summary>Pushes 1 to every key at (worker, clock) through node <paramref name="via"/>, again and again until it is acknowledged.</summary>
    private static async Task<int> PushUntilAcknowledgedAsync(HttpClient via, uint worker, ulong clock, ulong[] keys)
    {
        int tries = 0;
        long deadline = Environment.TickCount64 + 60_000;
        string last = "";
        while (Environment.TickCount64 < deadline)
        {
            tries++;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tables/t/push") { Content = Wire.Kv(Wire.PushBlock(keys, Wire.Fill(keys.Length, 1f), 1)) };
                request.Headers.Add(ParamDbHeaders.Worker, worker.ToString(System.Globalization.CultureInfo.InvariantCulture));
                request.Headers.Add(ParamDbHeaders.Clock, clock.ToString(System.Globalization.CultureInfo.InvariantCulture));
                using var reply = await via.SendAsync(request);
                if (reply.StatusCode == HttpStatusCode.OK) return tries;
                last = $"{(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}";
                Assert.True(reply.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.RequestTimeout, $"clock {clock}: {last}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }
            await Task.Delay(20);
        }
        Assert.Fail($"Push at clock {clock} not acknowledged within 60 s: {last}");
        return tries;
    }

    [Fact]
    public async Task APrimaryKilledMidTrainingFailsOverToItsBackupsWithNoPushLostOrAppliedTwiceAndComesBackAsABackup()
    {
        await _cluster.StartAsync(1, null, "--cluster-init");
        await _cluster.StartAsync(2, null, _cluster.Join);
        await _cluster.StartAsync(3, null, _cluster.Join);
        using HttpClient n1 = _cluster.Client(1), n2 = _cluster.Client(2);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        uint worker = await ClockApiTests.RegisterAsync(n1, "trainer", leaseMs: 600_000);
        ClusterRing ring = ClusterRing.FromView(await ViewAsync(1));
        ulong hash = Ring.NameHash("t");
        // 20 keys on each node's arcs, one per block.
        ulong[] keys = [.. Enumerable.Range(0, 3).SelectMany(n => Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k => ring.PrimaryOf(hash, k) == n).Take(20)).Order()];

        ulong clock = 0;
        for (int i = 0; i < 10; i++) await PushUntilAcknowledgedAsync(n1, worker, ++clock, keys);

        long killed = Stopwatch.GetTimestamp();
        await _cluster[3]!.KillAsync();
        int retried = 0;
        double firstAck = 0;
        for (int i = 0; i < 20; i++)
        {
            retried += await PushUntilAcknowledgedAsync(n1, worker, ++clock, keys) - 1;
            if (i == 0) firstAck = Stopwatch.GetElapsedTime(killed).TotalMilliseconds;
        }
        output.WriteLine($"SIGKILL of n3 to the first acknowledged push on all keys: {firstAck:F0} ms; {retried} retries over 20 pushes");
        await WaitForAsync(1, "n3 down", v => v.Nodes.Single(n => n.Id == "n3").State == NodeState.Down);
        ClusterView failedOver = await ViewAsync(1);
        Assert.Equal(0, failedOver.Unavailable);   // every arc of n3 is served by its backup
        // n3's own 64 arcs and the 64 it backed up had one copy, until their stand-ins (n1 for n2's, n2 for n1's)
        // were sent them: then every arc has two again.
        Assert.InRange(failedOver.UnderReplicated, 0, 128);
        await WaitForAsync(1, "n3's arcs re-replicated", v => v.UnderReplicated == 0 && v.Nodes.Single(n => n.Id == "n3").State == NodeState.Down);
        Assert.Equal(128, (await ViewAsync(1)).StandIns!.Count);

        // Every acknowledged push is there exactly once: each key was pushed 1 at clocks 1…30.
        Assert.All(await Wire.PullAsync(n1, "t", keys), v => Assert.Equal(30f, v));
        Assert.All(await Wire.PullAsync(n2, "t", keys), v => Assert.Equal(30f, v));

        // n3 comes back as a backup, is caught up by the nodes that serve its arcs, and serves them again.
        await _cluster.StartAsync(3, null);
        await WaitForAsync(1, "n3 up again", v => v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0);
        using HttpClient n3 = _cluster.Client(3);
        Assert.All(await Wire.PullAsync(n3, "t", keys), v => Assert.Equal(30f, v));
        for (int i = 0; i < 10; i++) await PushUntilAcknowledgedAsync(n3, worker, ++clock, keys);
        foreach (HttpClient via in new[] { n1, n2, n3 })
            Assert.All(await Wire.PullAsync(via, "t", keys), v => Assert.Equal(40f, v));
    }
}
