using System.Globalization;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using ParamDb.Testing.History;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// A returning node is caught up beside the pushes (docs/replication.md, "Resync"): three real nodes at R = 2 whose
/// primaries send a joining node its arcs at a slow <c>--resync-rate</c>, so the copy takes seconds.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CatchUpTests(ITestOutputHelper output) : IDisposable
{
    private const int BigRows = 12_288, BigDim = 256;   // 12 MiB of rows: n3 gets about 8 MiB back
    private readonly ProcessCluster _cluster = new(3);
    private readonly HistoryRecorder _history = new();

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task PushesAreAcknowledgedWhileAReturningNodeIsSentItsArcsAndItServesOnlyOnceItHoldsThem()
    {
        string[] slow = ["--resync-rate", "1"];   // MiB/s, per primary
        // n1 and n2 hold back the copies of n3's arcs they would send each other as stand-ins while it is down: the
        // bytes counted below are then those sent to n3 alone.
        var holdStandIns = new Dictionary<string, string> { [ParamDb.Storage.Failpoints.Variable] = $"{ParamDb.Storage.Failpoints.StandIn}=delay:60000" };
        await _cluster.StartAsync(1, holdStandIns, ["--cluster-init", .. slow]);
        await _cluster.StartAsync(2, holdStandIns, [.. _cluster.Join, .. slow]);
        await _cluster.StartAsync(3, null, [.. _cluster.Join, .. slow]);
        (ClockedPusher pusher, _) = await ClockedPusher.StartAsync(_cluster, 3, 6, _history);
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "big", $$"""{"dim":{{BigDim}}}""");
        ulong[] bigKeys = [.. Enumerable.Range(0, BigRows).Select(i => (ulong)i << Ring.BlockBits)];   // one per ring block: every arc
        await Wire.PushAsync(n1, "big", bigKeys, Wire.Fill(BigRows * BigDim, 0.25f), BigDim);

        using var stop = new CancellationTokenSource();
        Task pushing = pusher.RunAsync(stop.Token);
        await pusher.WaitForPushesAsync(10);
        pusher.Avoid(3);
        await _cluster[3]!.KillAsync();
        await _cluster.WaitForViewAsync([1, 2], "n3 declared down", v => v.Nodes.Single(n => n.Id == "n3").State == NodeState.Down, TimeSpan.FromSeconds(30));
        await pusher.WaitForPushesAsync(pusher.Pushes + 10);   // pushes n3 misses

        // n3 returns. Sample, until it is up: its state, the bytes n1 and n2 have resent it, the pushes acknowledged.
        long resyncedBefore = await ResyncedAsync();
        await _cluster.StartAsync(3, null, slow);
        var samples = new List<(NodeState State, long Resynced, long Pushes)>();
        long deadline = Environment.TickCount64 + 90_000;
        while (true)
        {
            Assert.True(Environment.TickCount64 < deadline, $"n3 not up within 90 s\n{string.Join("\n", _cluster.LogTails(30))}");
            ClusterView? view = await _cluster.ViewAsync(1);
            if (view is null) continue;
            NodeState state = view.Nodes.Single(n => n.Id == "n3").State;
            samples.Add((state, await ResyncedAsync() - resyncedBefore, pusher.Pushes));
            if (state == NodeState.Up && view.UnderReplicated == 0) break;
            await Task.Delay(100);
        }
        long resynced = samples[^1].Resynced;
        Assert.True(resynced >= BigRows * BigDim * sizeof(float) / 2, $"only {resynced} bytes resent to n3");

        // The copy took seconds, and pushes went on meanwhile: between the first sample with some of it sent and the
        // last with part of it still to send, pushes were acknowledged (a copy that held them would show none).
        int first = samples.FindIndex(s => s.Resynced > 0), last = samples.FindLastIndex(s => s.Resynced < resynced);
        Assert.True(first >= 0 && last > first, $"no sample caught the copy under way: {Describe(samples)}");
        long during = samples[last].Pushes - samples[first].Pushes;
        output.WriteLine($"{resynced:N0} bytes resent to n3 over {last - first} samples (~{(last - first) * 0.1 + 0.1:F1} s and more); {during} pushes acknowledged meanwhile");
        Assert.True(during >= 5, $"only {during} pushes acknowledged while n3's arcs were on their way: {Describe(samples)}");
        // n3 served nothing before its copy was whole.
        Assert.DoesNotContain(samples, s => s.State == NodeState.Up && s.Resynced < resynced);

        pusher.Revive(3);
        await pusher.WaitForPushesAsync(pusher.Pushes + 10);
        await stop.CancelAsync();
        await pushing;
        List<string> wrong = await pusher.CheckSumsAsync([1, 2, 3]);
        Assert.True(wrong.Count == 0, $"{string.Join("\n", wrong)}\n{string.Join("\n", _cluster.LogTails(40))}");
        HistoryAssert.Linearizable(_history);

        // Every arc's copies agree, in both tables: nothing pushed while n3 was caught up was left behind there.
        ClusterRing ring = ClusterRing.FromView((await _cluster.ViewAsync(1))!);
        int bigRows = 0;
        foreach (string table in (string[])["t", "big"])
        {
            for (int i = 0; i < ring.Tokens.Length; i++)
            {
                string token = ring.Tokens[i].ToString(CultureInfo.InvariantCulture);
                int[] set = ring.ReplicasAt(i).ToArray();
                var primary = await ReplicationTests.CopyAsync(_cluster.Client, set[0] + 1, token, table: table);
                var backup = await ReplicationTests.CopyAsync(_cluster.Client, set[1] + 1, token, table: table);
                Assert.Equal(primary.Rows, backup.Rows);
                Assert.Equal(primary.Clock, backup.Clock);
                if (table == "big") bigRows += primary.Rows.Count;
            }
        }
        Assert.Equal(BigRows, bigRows);
    }

    /// <summary>
    /// A push its primary applied and logged but never sent a backup, and so never acknowledged (the primary died
    /// first), is on no other node. When that node returns, its primary drops its copy of the arcs before sending
    /// them whole: the row that push wrote is gone, and the key reads its initial value through every node, as it did
    /// while the node was down. A copy over the old one left the row there, to be read once the node served again.
    /// </summary>
    [Fact]
    public async Task AReturningNodeKeepsNoRowOfAPushThatWasNeverAcknowledged()
    {
        await _cluster.StartAsync(1, null, "--cluster-init");
        await _cluster.StartAsync(2, null, _cluster.Join);
        // n3 holds every batch it is about to send a backup for 30 s: its pushes are applied and logged, not replicated.
        await _cluster.StartAsync(3, new Dictionary<string, string> { [ParamDb.Storage.Failpoints.Variable] = $"{ParamDb.Storage.Failpoints.ReplicationSend}=delay:30000" }, _cluster.Join);
        using HttpClient n1 = _cluster.Client(1), n3 = _cluster.Client(3);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        await _cluster.WaitForViewAsync([1], "every node up", v => v.Nodes.All(n => n.State == NodeState.Up), TimeSpan.FromSeconds(30));
        ClusterRing ring = ClusterRing.FromView((await _cluster.ViewAsync(1))!);
        int self = ring.NodeIndex("n3");
        ulong key = Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits)
            .First(k => ring.PrimaryOf(Ring.NameHash("t"), k) == self);

        Task<HttpResponseMessage> stray = n3.PostAsync("/v1/tables/t/push", Wire.Kv(Wire.PushBlock([key], [5f], 1)));
        long deadline = Environment.TickCount64 + 20_000;
        while ((await n3.GetFromJsonAsync("v1/health", ProtocolJson.Default.HealthReply))!.Replication!.PushedBytes == 0)
        {
            Assert.True(Environment.TickCount64 < deadline, "n3 did not apply the push");
            await Task.Delay(20);
        }
        // A checkpoint makes the applied row durable on n3 (its log would too, a moment later).
        using (var checkpoint = await n3.PostAsync("v1/checkpoint", null)) Assert.True(checkpoint.IsSuccessStatusCode, await checkpoint.Content.ReadAsStringAsync());
        Assert.False(stray.IsCompleted, "the push was answered before its backup had it");
        await _cluster[3]!.KillAsync();
        await Assert.ThrowsAnyAsync<Exception>(async () => (await stray).EnsureSuccessStatusCode());
        await _cluster.WaitForViewAsync([1, 2], "n3 declared down", v => v.Nodes.Single(n => n.Id == "n3").State == NodeState.Down, TimeSpan.FromSeconds(30));
        Assert.Equal(0f, Assert.Single(await Wire.PullAsync(n1, "t", [key])));   // never acknowledged, and on no other node

        await _cluster.StartAsync(3, null);
        await _cluster.WaitForViewAsync([1, 2], "n3 back, caught up and serving", v => v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0, TimeSpan.FromSeconds(60));
        using HttpClient back = _cluster.Client(3);
        Assert.Equal(0f, Assert.Single(await Wire.PullAsync(back, "t", [key])));
        Assert.Equal(0f, Assert.Single(await Wire.PullAsync(n1, "t", [key])));
        output.WriteLine($"key {key} of n3's arcs: 5 applied on n3 alone before it died, read as 0 through n1 and n3 once n3 serves it again");
    }

    private static string Describe(List<(NodeState State, long Resynced, long Pushes)> samples) =>
        string.Join(", ", samples.Select(s => $"{s.State}/{s.Resynced}/{s.Pushes}"));

    /// <summary>Bytes n1 and n2 have sent whole to backups since they started (<c>GET /v1/health</c>).</summary>
    private async Task<long> ResyncedAsync()
    {
        long sum = 0;
        foreach (int node in (int[])[1, 2])
        {
            using HttpClient http = _cluster.Client(node);
            HealthReply health = (await http.GetFromJsonAsync("v1/health", ProtocolJson.Default.HealthReply))!;
            sum += health.Replication!.ResyncedBytes;
        }
        return sum;
    }
}
