using System.Net;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Real partitions: three <c>paramdb</c> processes in network namespaces, one of them cut off from the others by
/// nftables rules in its own namespace while the test still reaches all three (<see cref="NetworkLab"/>).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>
    /// Fails with the reason when namespaces cannot be made, unless <c>PARAMDB_NO_NETNS=1</c> says to skip (a
    /// machine without root): CI installs what they need, and a partition test that quietly passes tests nothing.
    /// </summary>
    private static bool Skip()
    {
        if (NetworkLab.Unavailable() is not { } why) return false;
        if (Environment.GetEnvironmentVariable("PARAMDB_NO_NETNS") == "1") return true;
        Assert.Fail($"Partition tests need network namespaces, and {why}. Run as root with iproute2 and nftables, or set PARAMDB_NO_NETNS=1 to skip them.");
        return true;
    }

    private static async Task<T> EventuallyAsync<T>(string what, Func<Task<T?>> probe, TimeSpan within) where T : class
    {
        long deadline = Environment.TickCount64 + (long)within.TotalMilliseconds;
        Exception? last = null;
        while (Environment.TickCount64 < deadline)
        {
            try
            {
                if (await probe() is { } found) return found;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e;   // a node between leaders, or a cut link
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"Not within {within.TotalSeconds} s: {what}.{(last is null ? "" : $" Last error: {last.Message}")}");
    }

    private static async Task<string[]> TablesOfAsync(NamespaceCluster cluster, int i)
    {
        using HttpClient http = cluster.Client(i);
        var list = await http.GetFromJsonAsync("v1/tables?scope=node", ProtocolJson.Default.TableList);
        return [.. list!.Tables.Select(t => t.Name).Order(StringComparer.Ordinal)];
    }

    [Fact]
    public async Task ALeaderCutOffFromTheMajorityCommitsNothingAndTheHealedClusterAgreesOnTheMajoritysChanges()
    {
        if (Skip()) return;
        await using NamespaceCluster cluster = await NamespaceCluster.StartAsync(3);
        ClusterView view = await EventuallyAsync("all three nodes up with a leader", async () =>
            await cluster.ViewAsync(3) is { Nodes.Count: 3, Leader: not null } v ? v : null, TimeSpan.FromSeconds(30));
        using (HttpClient any = cluster.Client(3)) await Wire.CreateTableAsync(any, "before", """{"dim":1}""");

        int leader = int.Parse(view.Leader![1..], System.Globalization.CultureInfo.InvariantCulture);
        int[] majority = [.. Enumerable.Range(1, 3).Where(i => i != leader)];
        cluster.Lab.Cut(leader, majority);

        // The majority elects a leader of its own.
        ClusterView after = await EventuallyAsync("a leader among the majority", async () =>
            await cluster.ViewAsync(majority[0]) is { Leader: { } l } v && l != view.Leader ? v : null, TimeSpan.FromSeconds(30));
        Assert.Contains(after.Leader, majority.Select(i => $"n{i}"));

        // A change through the majority commits (a 503 no_leader while its election settles is retried).
        using HttpClient side = cluster.Client(majority[1]);
        await EventuallyAsync("a table created through the majority", async () =>
        {
            using var reply = await side.PutAsync("v1/tables/majority", Wire.Json("""{"dim":1}"""));
            return reply.StatusCode is HttpStatusCode.OK or HttpStatusCode.Created ? "made" : null;
        }, TimeSpan.FromSeconds(30));

        // A change through the cut-off node is never acknowledged: 503, or no answer at all.
        using HttpClient cut = cluster.Client(leader);
        HttpStatusCode? minority = null;
        try
        {
            using var reply = await cut.PutAsync("v1/tables/minority", Wire.Json("""{"dim":1}"""));
            minority = reply.StatusCode;
        }
        catch (TaskCanceledException)
        {
            // The client gave up after 10 s: not acknowledged either.
        }
        Assert.True(minority is null or HttpStatusCode.ServiceUnavailable, $"A change on the minority side answered {minority}.");

        // Healed only once the majority's leader has declared the cut-off node down (a --down-after after its
        // election): the minority's refusal can come back sooner than that, and a heal before it left nothing to check.
        await EventuallyAsync($"n{leader} declared down by the majority", async () =>
            await cluster.ViewAsync(majority[0]) is { } v && v.Nodes.Single(n => n.Id == $"n{leader}").State == NodeState.Down ? v : null, TimeSpan.FromSeconds(30));
        cluster.Lab.Heal(leader);

        // Healed: every node holds exactly the majority's tables, the cut-off node included.
        string[] expected = ["before", "majority"];
        foreach (int i in Enumerable.Range(1, 3))
        {
            await EventuallyAsync($"node n{i} holding exactly the tables 'before' and 'majority'", async () =>
                (await TablesOfAsync(cluster, i)).SequenceEqual(expected) ? "agreed" : null, TimeSpan.FromSeconds(30));
        }
        // The cut-off node was declared down by the majority's leader (each declaration an epoch), and is up again.
        ClusterView healed = await EventuallyAsync($"n{leader} up again in its own view", async () =>
            await cluster.ViewAsync(leader) is var v && v.Nodes.All(n => n.State == NodeState.Up) ? v : null, TimeSpan.FromSeconds(30));
        Assert.True(healed.Epoch > after.Epoch, $"epoch {healed.Epoch} after the heal, {after.Epoch} after the cut");
        Assert.Equal(3, healed.Nodes.Count);
    }

    /// <summary>A push of <paramref name="keys"/> sent straight to a node as a smart client sends it (with the ring epoch); its status, or 0 for no answer.</summary>
    private static async Task<int> PushDirectAsync(HttpClient http, ulong epoch, ulong[] keys, float value)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tables/t/push") { Content = Wire.Kv(Wire.PushBlock(keys, Wire.Fill(keys.Length, value), 1)) };
        request.Headers.Add(ParamDbHeaders.RingEpoch, epoch.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            using var reply = await http.SendAsync(request);
            return (int)reply.StatusCode;
        }
        catch (TaskCanceledException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task ANodeCutOffStopsAcknowledgingWithinItsLeaseBeforeItIsDeclaredDownAndIsUpAgainOnceHealed()
    {
        if (Skip()) return;
        await using NamespaceCluster cluster = await NamespaceCluster.StartAsync(3, "--replicas", "1");
        ClusterView view = await EventuallyAsync("all three nodes up with a leader", async () =>
            await cluster.ViewAsync(1) is { Nodes.Count: 3, Leader: not null } v ? v : null, TimeSpan.FromSeconds(30));
        using (HttpClient any = cluster.Client(1)) await Wire.CreateTableAsync(any, "t", """{"dim":1}""");
        int leader = int.Parse(view.Leader![1..], System.Globalization.CultureInfo.InvariantCulture);
        int cut = leader == 3 ? 2 : 3;
        ClusterRing ring = ClusterRing.FromView(view);
        ulong hash = Ring.NameHash("t");
        ulong[] keys = [.. Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k => ring.PrimaryOf(hash, k) == ring.NodeIndex($"n{cut}")).Take(10)];
        using HttpClient node = cluster.Client(cut);
        Assert.Equal(200, await PushDirectAsync(node, view.Epoch, keys, 1f));

        cluster.Lab.Cut(cut, [.. Enumerable.Range(1, 3).Where(i => i != cut)]);
        long cutAt = Environment.TickCount64;
        // Pushes straight to the cut-off node, one after another, each with its start and end: the node must stop
        // acknowledging before the others declare it down, and never acknowledge again while cut off.
        var pushes = new List<(long Start, long End, int Status)>();
        using var stop = new CancellationTokenSource();
        Task pushing = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                long start = Environment.TickCount64;
                int status = await PushDirectAsync(node, view.Epoch, keys, 1f);
                lock (pushes) pushes.Add((start, Environment.TickCount64, status));
            }
        });
        await EventuallyAsync($"n{cut} declared down by n{leader}", async () =>
            await cluster.ViewAsync(leader) is var v && v.Nodes.Single(n => n.Id == $"n{cut}").State == NodeState.Down ? v : null, TimeSpan.FromSeconds(30));
        long downSeen = Environment.TickCount64;
        // Keep pushing a while after: still nothing acknowledged.
        await EventuallyAsync("pushes started after the node was declared down", () =>
        {
            lock (pushes) return Task.FromResult(pushes.Count(p => p.Start > downSeen) >= 3 ? "enough" : null);
        }, TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await pushing;

        (long Start, long End, int Status)[] seen;
        lock (pushes) seen = [.. pushes];
        (long Start, long End, int Status)[] acked = [.. seen.Where(p => p.Status == 200)];
        Assert.True(seen.Any(p => p.Status == 503), $"The cut-off node never refused: {string.Join(", ", seen.Select(p => p.Status))}");
        Assert.All(acked, p => Assert.True(p.End < downSeen, $"n{cut} acknowledged a push that ended at +{p.End - cutAt} ms, after it was seen down at +{downSeen - cutAt} ms."));
        long lastAck = acked.Length == 0 ? cutAt : acked.Max(p => p.End);
        long firstRefusal = seen.Where(p => p.Status == 503).Min(p => p.Start);
        Assert.All(seen.Where(p => p.Start > firstRefusal), p => Assert.NotEqual(200, p.Status));   // once refused, never acknowledged again
        Assert.True(lastAck <= downSeen);

        cluster.Lab.Heal(cut);
        await EventuallyAsync($"n{cut} up again", async () =>
            await cluster.ViewAsync(leader) is var v && v.Nodes.Single(n => n.Id == $"n{cut}").State == NodeState.Up ? v : null, TimeSpan.FromSeconds(30));
        await EventuallyAsync("a push acknowledged by the healed node", async () =>
            await PushDirectAsync(node, (await cluster.ViewAsync(cut)).Epoch, keys, 1f) == 200 ? "acked" : null, TimeSpan.FromSeconds(30));
    }

    /// <summary>A push of <paramref name="keys"/> sent to a node to route (no epoch); its status, or 0 for no answer.</summary>
    private static async Task<int> PushRoutedAsync(HttpClient http, ulong[] keys)
    {
        try
        {
            using var reply = await http.PostAsync("/v1/tables/t/push", Wire.Kv(Wire.PushBlock(keys, Wire.Fill(keys.Length, 1f), 1)));
            return (int)reply.StatusCode;
        }
        catch (Exception e) when (e is TaskCanceledException or HttpRequestException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task AtR2ACutOffPrimaryAndTheBackupThatTakesOverNeverAcknowledgeAtOnceAndTheHealedCopiesAgree()
    {
        if (Skip()) return;
        await using NamespaceCluster cluster = await NamespaceCluster.StartAsync(3);   // R = 2
        ClusterView view = await EventuallyAsync("all three nodes up with a leader", async () =>
            await cluster.ViewAsync(1) is { Nodes.Count: 3, Leader: not null } v && v.Nodes.All(n => n.State == NodeState.Up) ? v : null, TimeSpan.FromSeconds(30));
        using (HttpClient any = cluster.Client(1)) await Wire.CreateTableAsync(any, "t", """{"dim":1}""");
        int leader = int.Parse(view.Leader![1..], System.Globalization.CultureInfo.InvariantCulture);
        int cut = leader == 3 ? 2 : 3;
        ClusterRing ring = ClusterRing.FromView(view);
        ulong hash = Ring.NameHash("t");
        ulong[] keys = [.. Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k => ring.PrimaryOf(hash, k) == ring.NodeIndex($"n{cut}")).Take(10)];
        using HttpClient node = cluster.Client(cut), majority = cluster.Client(leader);
        Assert.Equal(200, await PushDirectAsync(node, view.Epoch, keys, 1f));

        // Two writers of the cut-off node's keys: one straight to it (a client with the old ring), one through the
        // leader, which routes to whichever node serves them. Every push with its start, end, status and side.
        cluster.Lab.Cut(cut, [.. Enumerable.Range(1, 3).Where(i => i != cut)]);
        long cutAt = Environment.TickCount64;
        var pushes = new List<(long Start, long End, int Status, bool CutSide)>();
        using var stop = new CancellationTokenSource();
        Task Writer(bool cutSide) => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                long start = Environment.TickCount64;
                int status = cutSide ? await PushDirectAsync(node, view.Epoch, keys, 1f) : await PushRoutedAsync(majority, keys);
                lock (pushes) pushes.Add((start, Environment.TickCount64, status, cutSide));
                if (status != 200) await Task.Delay(20);
            }
        });
        Task[] writers = [Writer(true), Writer(false)];
        await EventuallyAsync("the majority acknowledging the cut-off node's keys", () =>
        {
            lock (pushes) return Task.FromResult(pushes.Count(p => !p.CutSide && p.Status == 200) >= 5 ? "yes" : null);
        }, TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        (long Start, long End, int Status, bool CutSide)[] seen;
        lock (pushes) seen = [.. pushes];
        long[] cutAcks = [.. seen.Where(p => p.CutSide && p.Status == 200).Select(p => p.End)];
        long firstMajorityAck = seen.Where(p => !p.CutSide && p.Status == 200).Min(p => p.End);
        // No two primaries: every acknowledgement from the cut-off node came before the first from its successor.
        Assert.All(cutAcks, end => Assert.True(end < firstMajorityAck,
            $"n{cut} acknowledged at +{end - cutAt} ms, after the majority's first acknowledgement at +{firstMajorityAck - cutAt} ms"));
        Assert.Contains(seen, p => p.CutSide);   // the cut-off node was asked (it answers 503 or nothing: its backup is out of reach)

        // Healed: the node catches up as a backup and serves its arcs again; every arc's two copies then agree.
        cluster.Lab.Heal(cut);
        ClusterView healed = await EventuallyAsync($"n{cut} up again and every arc on two nodes", async () =>
            await cluster.ViewAsync(leader) is var v && v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0 ? v : null, TimeSpan.FromSeconds(60));
        Assert.Equal(200, await PushRoutedAsync(majority, keys));   // one more, through the new epoch, so every copy has had a batch since
        ClusterRing after = ClusterRing.FromView(healed);
        for (int i = 0; i < after.Tokens.Length; i++)
        {
            string token = after.Tokens[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
            int[] set = after.ReplicasAt(i).ToArray();
            var primary = await ReplicationTests.CopyAsync(cluster.Client, set[0] + 1, token, NamespaceCluster.Secret);
            var backup = await ReplicationTests.CopyAsync(cluster.Client, set[1] + 1, token, NamespaceCluster.Secret);
            Assert.Equal(primary.Rows, backup.Rows);
            Assert.Equal(primary.Clock, backup.Clock);
        }
        // And every node reads the same rows, holding at least every acknowledged push.
        long acked = 1 + seen.Count(p => p.Status == 200) + 1;
        float[] first = await Wire.PullAsync(cluster.Client(1), "t", keys);
        Assert.All(first, v => Assert.True(v >= acked, $"a key reads {v}, below the {acked} acknowledged pushes"));
        foreach (int i in new[] { 2, 3 }) Assert.Equal(first, await Wire.PullAsync(cluster.Client(i), "t", keys));
        output.WriteLine($"cut n{cut}: {cutAcks.Length} acknowledged by it after the cut, the majority's first {firstMajorityAck - cutAt} ms after the cut; healed copies agree on {after.Tokens.Length} arcs");
    }
}
