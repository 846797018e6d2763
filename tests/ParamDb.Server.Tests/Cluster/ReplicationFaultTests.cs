using System.Diagnostics;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;
using ParamDb.Testing;
using ParamDb.Testing.History;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Replication when a backup misbehaves (docs/replication.md, "Testing"): three real nodes at R = 2, one of them
/// armed with a failpoint (<c>PARAMDB_FAILPOINTS</c>). A slow backup holds the acknowledgement of every push it
/// backs up until it has written it; a node that dies while it sends, receives or writes a batch, or catches a backup
/// up, costs no acknowledged push, and catches up itself when it returns.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReplicationFaultTests(ITestOutputHelper output) : IDisposable
{
    private readonly ProcessCluster _cluster = new(3);
    private readonly HistoryRecorder _history = new();

    public void Dispose() => _cluster.Dispose();

    private static Dictionary<string, string> Armed(string failpoint, string action) => new() { [Failpoints.Variable] = $"{failpoint}={action}" };

    /// <summary>Keys (one per ring block) of arcs whose replica chain is exactly <paramref name="primary"/>, <paramref name="backup"/>.</summary>
    private static ulong[] KeysOnChain(ClusterRing ring, string table, int primary, int backup, int count) =>
        [.. Enumerable.Range(0, 200_000).Select(i => (ulong)i << Ring.BlockBits).Where(k =>
        {
            ReadOnlySpan<int> set = ring.ReplicasAt(ring.RangeOf(Ring.Position(Ring.NameHash(table), k)));
            return set[0] == primary && set[1] == backup;
        }).Take(count)];

    /// <summary>
    /// Three nodes, n2 writing every batch it receives <paramref name="delayMs"/> late, and tables of dim 1; the ring
    /// once every node is up (one taken while n2 still joined would list its arcs as n1's).
    /// </summary>
    private async Task<ClusterRing> StartWithSlowBackupAsync(int delayMs, params string[] tables)
    {
        await _cluster.StartAsync(1, null, "--cluster-init");
        await _cluster.StartAsync(2, Armed(Failpoints.ReplicationReceive, $"delay:{delayMs}"), _cluster.Join);
        await _cluster.StartAsync(3, null, _cluster.Join);
        using HttpClient n1 = _cluster.Client(1);
        foreach (string table in tables) await Wire.CreateTableAsync(n1, table, """{"dim":1}""");
        await _cluster.WaitForViewAsync([1], "every node up", v => v.Nodes.All(n => n.State == NodeState.Up), TimeSpan.FromSeconds(30));
        return ClusterRing.FromView((await _cluster.ViewAsync(1))!);
    }

    [Fact]
    public async Task ASlowBackupHoldsTheAcknowledgementUntilItHasWrittenThePush()
    {
        ClusterRing ring = await StartWithSlowBackupAsync(400, "t");
        using HttpClient n1 = _cluster.Client(1);
        ulong[] slow = KeysOnChain(ring, "t", ring.NodeIndex("n1"), ring.NodeIndex("n2"), 20);
        Assert.Equal(20, slow.Length);

        // Each push of keys that n2 backs up waits for n2's write, which the failpoint delays by 400 ms.
        for (int round = 1; round <= 3; round++)
        {
            await _cluster.WaitForViewAsync([1], "every node up", v => v.Nodes.All(n => n.State == NodeState.Up), TimeSpan.FromSeconds(30));
            var clock = Stopwatch.StartNew();
            await Wire.PushAsync(n1, "t", slow, Wire.Fill(slow.Length, 1f), 1);
            output.WriteLine($"push {round} backed up by the slow n2: acknowledged after {clock.ElapsedMilliseconds} ms");
            Assert.True(clock.ElapsedMilliseconds >= 400, $"acknowledged after {clock.ElapsedMilliseconds} ms, before the backup could have written it");
        }

        // n2 had written all three when they were acknowledged: with n1 gone, n2 serves them.
        await _cluster[1]!.KillAsync();
        await _cluster.WaitForViewAsync([2, 3], "n1 declared down", v => v.Nodes.Single(n => n.Id == "n1").State == NodeState.Down, TimeSpan.FromSeconds(30));
        using HttpClient n3 = _cluster.Client(3);
        Assert.All(await Wire.PullAsync(n3, "t", slow), v => Assert.Equal(3f, v));
    }

    [Fact]
    public async Task ATableDeletedWhileItsRowsWaitForABackupDoesNotHoldUpTheOtherTables()
    {
        ClusterRing ring = await StartWithSlowBackupAsync(500, "a", "b");
        using HttpClient n1 = _cluster.Client(1);
        ulong[] a = KeysOnChain(ring, "a", ring.NodeIndex("n1"), ring.NodeIndex("n2"), 5);
        ulong[] b = KeysOnChain(ring, "b", ring.NodeIndex("n1"), ring.NodeIndex("n2"), 5);

        // Four workers push to table a while each batch to n2 takes half a second, so keys of a wait for the next
        // batch nearly all the time; then a is deleted under them.
        using var stop = new CancellationTokenSource();
        long pushesToA = 0;
        Task[] pushers = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            using HttpClient http = _cluster.Client(1);
            while (!stop.IsCancellationRequested)
            {
                using var reply = await http.PostAsync("v1/tables/a/push", Wire.Kv(Wire.PushBlock(a, Wire.Fill(a.Length, 1f), 1)));
                if (reply.StatusCode == System.Net.HttpStatusCode.OK) Interlocked.Increment(ref pushesToA);
                else if (reply.StatusCode == System.Net.HttpStatusCode.NotFound) return;   // deleted
            }
        }))];
        long until = Environment.TickCount64 + 30_000;
        while (Interlocked.Read(ref pushesToA) < 8)
        {
            Assert.True(Environment.TickCount64 < until, "no pushes to a acknowledged");
            await Task.Delay(20);
        }
        using (var deleted = await n1.DeleteAsync("v1/tables/a")) Assert.True(deleted.IsSuccessStatusCode, await deleted.Content.ReadAsStringAsync());
        await stop.CancelAsync();
        await Task.WhenAll(pushers);

        // n2 backs up b's keys too: their pushes are still confirmed, with a's keys that were waiting dropped rather
        // than sent to a backup that no longer has the table (which would refuse them, 404, again and again).
        for (int i = 1; i <= 3; i++)
        {
            PushResult pushed = await Wire.PushAsync(n1, "b", b, Wire.Fill(b.Length, 1f), 1);
            Assert.Equal(b.Length, pushed.Applied);
        }
        using HttpClient n2 = _cluster.Client(2);
        Assert.All(await Wire.PullAsync(n2, "b", b), v => Assert.Equal(3f, v));
    }

    [Fact]
    public async Task ANodeThatDiesWhileItCatchesAReturningNodeUpLeavesThatNodeJoiningSoItsStaleRowsAreNeverServed()
    {
        // n1 and n2 do not send each other copies of n3's arcs while it is down (their stand-in copies wait a minute):
        // then nothing else holds what n2 acknowledges there (DoubleFailureTests has a caught-up stand-in serve).
        string holdStandIns = $"{Failpoints.StandIn}=delay:60000";
        await _cluster.StartAsync(1, new Dictionary<string, string> { [Failpoints.Variable] = holdStandIns }, "--cluster-init");
        await _cluster.StartAsync(2, new Dictionary<string, string> { [Failpoints.Variable] = $"{Failpoints.CatchUp}=crash,{holdStandIns}" }, _cluster.Join);
        await _cluster.StartAsync(3, null, _cluster.Join);
        (ClockedPusher pusher, _) = await ClockedPusher.StartAsync(_cluster, 3, 6, _history, waitUp: false);
        using var stop = new CancellationTokenSource();
        pusher.GiveUpAfter = TimeSpan.Zero;
        Task pushing = pusher.RunAsync(stop.Token);
        await pusher.WaitForPushesAsync(20);

        // n3 dies; n1 and n2 serve its arcs and acknowledge pushes there that n3 does not have.
        pusher.Avoid(3);
        await _cluster[3]!.KillAsync();
        await _cluster.WaitForViewAsync([1, 2], "n3 declared down", v => v.Nodes.Single(n => n.Id == "n3").State == NodeState.Down, TimeSpan.FromSeconds(30));
        await pusher.WaitForPushesAsync(pusher.Pushes + 20);

        // n3 returns and joins; n2 dies as it starts to send n3 the arcs it served meanwhile.
        await _cluster.StartAsync(3, null);
        Process armed = _cluster[2]!.Process;
        using (var exit = new CancellationTokenSource(TimeSpan.FromSeconds(60))) await armed.WaitForExitAsync(exit.Token);
        pusher.Avoid(2);
        await _cluster.WaitForViewAsync([1], "n2 declared down", v => v.Nodes.Single(n => n.Id == "n2").State == NodeState.Down, TimeSpan.FromSeconds(30));

        // The arcs only n2 and n3 hold now have no node that holds what n2 acknowledged: n3 must not serve them
        // with its stale rows, so it stays joining (those arcs unavailable) for as long as n2 is down.
        long until = Environment.TickCount64 + 3_000;
        while (Environment.TickCount64 < until)
        {
            ClusterView view = (await _cluster.ViewAsync(1))!;
            Assert.NotEqual(NodeState.Up, view.Nodes.Single(n => n.Id == "n3").State);
            Assert.True(view.Unavailable > 0, $"epoch {view.Epoch}: no arc unavailable with n2 down and n3 joining");
            await Task.Delay(100);
        }
        await stop.CancelAsync();
        await pushing;
    }

    [Theory]
    [InlineData(Failpoints.ReplicationSend)]    // as a primary: sending a batch
    [InlineData(Failpoints.ReplicationReceive)] // as a backup: a batch arrived
    
    [InlineData(Failpoints.RecordsBeforeLog)]
    [InlineData(Failpoints.RecordsAfterLog)]
    public async Task ANodeThatDiesWhileItReplicatesCostsNoAcknowledgedPush(string failpoint)
    {
        await _cluster.StartAsync(1, null, "--cluster-init");
        await _cluster.StartAsync(2, Armed(failpoint, "crash"), _cluster.Join);
        await _cluster.StartAsync(3, null, _cluster.Join);
        (ClockedPusher pusher, _) = await ClockedPusher.StartAsync(_cluster, 3, 6, _history, waitUp: false);

        using var stop = new CancellationTokenSource();
        pusher.Avoid(2);   // it dies at its first batch
        Task pushing = pusher.RunAsync(stop.Token);

        Process armed = _cluster[2]!.Process;
        using (var exit = new CancellationTokenSource(TimeSpan.FromSeconds(60))) await armed.WaitForExitAsync(exit.Token);
        Assert.NotEqual(0, armed.ExitCode);
        await _cluster.WaitForViewAsync([1, 3], "n2 declared down", v => v.Nodes.Single(n => n.Id == "n2").State == NodeState.Down, TimeSpan.FromSeconds(30));
        await pusher.WaitForPushesAsync(pusher.Pushes + 20);
        using (await pusher.PauseAsync())
        {
            List<string> off = await pusher.CheckSumsAsync([1, 3]);
            Assert.True(off.Count == 0, $"with n2 down:\n{string.Join("\n", off)}\n{pusher.TakeTraces()}\n{string.Join("\n", _cluster.LogTails(40))}");
        }

        await _cluster.StartAsync(2, null);   // no failpoint now
        await _cluster.WaitForViewAsync([1, 3], "n2 caught up and up", v => v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0, TimeSpan.FromSeconds(60));
        pusher.Revive(2);
        await pusher.WaitForPushesAsync(pusher.Pushes + 20);
        await stop.CancelAsync();
        await pushing;
        List<string> wrong = await pusher.CheckSumsAsync([1, 2, 3]);
        Assert.True(wrong.Count == 0, $"after n2 came back:\n{string.Join("\n", wrong)}\n{string.Join("\n", _cluster.LogTails(40))}");
        HistoryAssert.Linearizable(_history);
        output.WriteLine($"n2 crashed at {failpoint}: {pusher.Pushes} pushes acknowledged ({pusher.Retries} retries), 0 lost, 0 applied twice");
    }
}
