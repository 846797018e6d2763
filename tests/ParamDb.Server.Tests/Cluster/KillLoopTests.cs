using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using ParamDb.Testing.History;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// The kill loop (docs/replication.md): three real nodes at R = 2; a clocked worker pushes <c>add</c> updates to a
/// fixed key set, retrying each push at the same clock until it is acknowledged, while a reader pulls; round after
/// round a random node is killed with SIGKILL, declared down, restarted, caught up and counted up again. Every
/// operation is recorded, and afterwards each key's history must be linearizable (<see cref="Linearizability"/>):
/// no acknowledged push lost, none applied twice, no pull that went back or saw a push that then vanished.
/// <c>PARAMDB_KILL_ROUNDS</c> sets the rounds (CI: 30); <c>PARAMDB_KILL=leader</c> kills the Raft leader every round
/// (the failover benchmark's slow case), and <c>PARAMDB_KEEP_LOGS=DIR</c> copies the nodes' logs there at the end.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class KillLoopTests(ITestOutputHelper output) : IDisposable
{
    private const int Keys = 24;
    private readonly ProcessCluster _cluster = new(3);
    private readonly HistoryRecorder _history = new();

    public void Dispose()
    {
        if (Environment.GetEnvironmentVariable("PARAMDB_KEEP_LOGS") is { Length: > 0 } keep)
        {
            Directory.CreateDirectory(keep);
            foreach (string log in Directory.GetFiles(_cluster.Root, "*.log")) File.Copy(log, Path.Combine(keep, Path.GetFileName(log)), overwrite: true);
        }
        _cluster.Dispose();
    }

    private static bool KillLeader => Environment.GetEnvironmentVariable("PARAMDB_KILL") == "leader";

    private static int Rounds => int.TryParse(Environment.GetEnvironmentVariable("PARAMDB_KILL_ROUNDS"), out int rounds) && rounds > 0 ? rounds : 30;

    /// <summary><c>PARAMDB_DOWN_AFTER</c> (ms) runs the nodes with that <c>--down-after</c>, for the failover benchmark.</summary>
    /// <summary>
    /// The nodes' options: <c>PARAMDB_DOWN_AFTER</c>, and a checkpoint every 5 s. At the default 60 s a node killed
    /// every few rounds never lived to take one, so each restart replayed its whole log, longer every round (20 s
    /// of replay by round 80 of a soak, and rounds of a minute); checkpoints taken between the kills keep the
    /// restarts short, and put kills in the middle of checkpoints.
    /// </summary>
    private static string[] NodeOptions => Environment.GetEnvironmentVariable("PARAMDB_DOWN_AFTER") is { Length: > 0 } ms
        ? ["--down-after", ms, "--checkpoint-interval", "5s"]
        : ["--checkpoint-interval", "5s"];

    private HttpClient Client(int i) => _cluster.Client(i);

    private Task<ClusterView?> ViewAsync(int i) => _cluster.ViewAsync(i);

    private Task WaitForAsync(int[] observers, string what, Func<ClusterView, bool> done, TimeSpan within) =>
        _cluster.WaitForViewAsync(observers, what, done, within);

    [Fact]
    public async Task NodesKilledRoundAfterRoundLoseNoAcknowledgedPushAndApplyNoneTwice()
    {
        await _cluster.StartAsync(1, null, ["--cluster-init", .. NodeOptions]);
        await _cluster.StartAsync(2, null, [.. _cluster.Join, .. NodeOptions]);
        await _cluster.StartAsync(3, null, [.. _cluster.Join, .. NodeOptions]);
        (ClockedPusher pusher, ClusterRing ring) = await ClockedPusher.StartAsync(_cluster, 3, Keys / 3, _history);
        ulong[] keys = pusher.Keys;
        ulong hash = Ring.NameHash("t");

        using var stop = new CancellationTokenSource();
        // Failover time: from the SIGKILL to the first push acknowledged, sent after it, holding a key the victim was
        // primary of.
        long killedAt = 0;
        int victimIndex = -1;
        bool leaderKilled = false;
        var failovers = new List<(double Ms, bool Leader)>();
        pusher.Acknowledged = (tryStart, chosen, trace) =>
            {
                long killed = Volatile.Read(ref killedAt);
                if (killed == 0 || tryStart < killed || !chosen.Any(i => ring.PrimaryOf(hash, keys[i]) == Volatile.Read(ref victimIndex))) return;
                double ms = System.Diagnostics.Stopwatch.GetElapsedTime(killed).TotalMilliseconds;
                lock (failovers) failovers.Add((ms, Volatile.Read(ref leaderKilled)));
                output.WriteLine($"  first acknowledged push on the victim's arcs {ms:F0} ms after the kill, at {DateTime.UtcNow:HH:mm:ss.fff}; its tries:{trace}");
                Volatile.Write(ref killedAt, 0);
            };
        Task pushing = pusher.RunAsync(stop.Token);
        long pulls = 0;
        Task reader = Task.Run(async () =>
        {
            var random = new Random(2);
            while (!stop.IsCancellationRequested)
            {
                using HttpClient http = Client(pusher.Via(random));
                http.Timeout = TimeSpan.FromSeconds(15);
                long start = HistoryRecorder.Now();
                try
                {
                    using var reply = await http.PostAsync("/v1/tables/t/pull", Wire.Kv(Wire.PullBlock(keys)));
                    if (reply.StatusCode == HttpStatusCode.OK)
                    {
                        float[] values = Wire.ValuesOf(await reply.Content.ReadAsByteArrayAsync(), keys);
                        for (int i = 0; i < keys.Length; i++) _history.Pull(1, keys[i], start, (long)values[i]);
                        Interlocked.Increment(ref pulls);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                }
                await Task.Delay(10);
            }
        });

        var kills = new Random(3);
        long startedAt = Environment.TickCount64;
        try
        {
            for (int round = 1; round <= Rounds; round++)
            {
                int victim = kills.Next(1, 4);
                if (KillLeader && (await ViewAsync(victim))?.Leader is ['n', char digit] && digit is >= '1' and <= '3') victim = digit - '0';
                int[] others = [.. Enumerable.Range(1, 3).Where(i => i != victim)];
                pusher.Avoid(victim);
                Volatile.Write(ref leaderKilled, (await ViewAsync(others[0]))?.Leader == $"n{victim}");
                Volatile.Write(ref victimIndex, victim - 1);
                Volatile.Write(ref killedAt, System.Diagnostics.Stopwatch.GetTimestamp());
                await _cluster[victim]!.KillAsync();
                output.WriteLine($"round {round}: n{victim} killed at {DateTime.UtcNow:HH:mm:ss.fff}{(Volatile.Read(ref leaderKilled) ? " (the leader)" : "")}");
                await WaitForAsync(others, $"round {round}: n{victim} declared down", v => v.Nodes.Single(n => n.Id == $"n{victim}").State == NodeState.Down && v.Unavailable == 0, TimeSpan.FromSeconds(30));
                await _cluster.StartAsync(victim, null, NodeOptions);
                await WaitForAsync(others, $"round {round}: n{victim} caught up and up", v => v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0, TimeSpan.FromSeconds(60));
                pusher.Revive(victim);
                Volatile.Write(ref killedAt, 0);
                using (await pusher.PauseAsync())
                {
                    List<string> off = await pusher.CheckSumsAsync(Enumerable.Range(1, 3));
                    Assert.True(off.Count == 0, $"after round {round} (n{victim} killed):\n{string.Join("\n", off)}\npushes retried:\n{pusher.TakeTraces()}\n{string.Join("\n", _cluster.LogTails(40))}");
                    pusher.TakeTraces();
                }
                Assert.False(pushing.IsFaulted, pushing.Exception?.ToString());
            }
        }
        finally
        {
            await stop.CancelAsync();
        }
        await pushing;
        await reader;

        // A final read through every node: the sum of every push, exactly; then every key's history, linearizable.
        List<string> wrong = await pusher.CheckSumsAsync(Enumerable.Range(1, 3));
        Assert.True(wrong.Count == 0, string.Join("\n", wrong) + "\n" + string.Join("\n", _cluster.LogTails(30)));
        HistoryAssert.Linearizable(_history);
        Report("every kill", [.. failovers.Select(f => f.Ms).Order()]);
        Report("the Raft leader killed", [.. failovers.Where(f => f.Leader).Select(f => f.Ms).Order()]);
        Report("another node killed", [.. failovers.Where(f => !f.Leader).Select(f => f.Ms).Order()]);
        output.WriteLine($"{Rounds} rounds in {(Environment.TickCount64 - startedAt) / 1000.0:F1} s: {pusher.Pushes} pushes acknowledged ({pusher.Retries} retries), {pulls} pulls, {_history.Count} operations checked, 0 lost, 0 applied twice");
    }

    private void Report(string which, double[] times) =>
        output.WriteLine($"failover (SIGKILL to the first acknowledged push on the victim's ranges), {which}: {times.Length} kills, p50 {Percentile(times, 0.50):F0} ms, p99 {Percentile(times, 0.99):F0} ms, max {times.LastOrDefault():F0} ms; all: {string.Join(' ', times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))}");

    /// <summary>The nearest-rank percentile of sorted <paramref name="sorted"/>.</summary>
    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}
