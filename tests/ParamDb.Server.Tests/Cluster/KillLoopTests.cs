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
/// <c>PARAMDB_KILL_ROUNDS</c> sets the rounds (CI: 30).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class KillLoopTests(ITestOutputHelper output) : IDisposable
{
    private const int Keys = 24;
    private readonly ProcessCluster _cluster = new(3);
    private readonly HistoryRecorder _history = new();

    public void Dispose() => _cluster.Dispose();

    private static int Rounds => int.TryParse(Environment.GetEnvironmentVariable("PARAMDB_KILL_ROUNDS"), out int rounds) && rounds > 0 ? rounds : 30;

    /// <summary><c>PARAMDB_DOWN_AFTER</c> (ms) runs the nodes with that <c>--down-after</c>, for the failover benchmark.</summary>
    private static string[] DownAfter => Environment.GetEnvironmentVariable("PARAMDB_DOWN_AFTER") is { Length: > 0 } ms ? ["--down-after", ms] : [];

    private HttpClient Client(int i) => _cluster.Client(i);

    private async Task<ClusterView?> ViewAsync(int i)
    {
        try
        {
            using HttpClient http = Client(i);
            http.Timeout = TimeSpan.FromSeconds(5);
            return await http.GetFromJsonAsync("v1/cluster", ProtocolJson.Default.ClusterView);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    private async Task WaitForAsync(int[] observers, string what, Func<ClusterView, bool> done, TimeSpan within)
    {
        long deadline = Environment.TickCount64 + (long)within.TotalMilliseconds;
        ClusterView? last = null;
        while (Environment.TickCount64 < deadline)
        {
            foreach (int i in observers)
            {
                if (await ViewAsync(i) is { } view)
                {
                    last = view;
                    if (done(view)) return;
                }
            }
            await Task.Delay(50);
        }
        Assert.Fail($"Not within {within.TotalSeconds} s: {what}. Last view: {(last is null ? "none" : $"epoch {last.Epoch}, {string.Join(", ", last.Nodes.Select(n => $"{n.Id} {n.State}"))}, under-replicated {last.UnderReplicated}, unavailable {last.Unavailable}")}\n{string.Join("\n", _cluster.LogTails(40))}");
    }

    [Fact]
    public async Task NodesKilledRoundAfterRoundLoseNoAcknowledgedPushAndApplyNoneTwice()
    {
        await _cluster.StartAsync(1, null, ["--cluster-init", .. DownAfter]);
        await _cluster.StartAsync(2, null, [.. _cluster.Join, .. DownAfter]);
        await _cluster.StartAsync(3, null, [.. _cluster.Join, .. DownAfter]);
        using (HttpClient n1 = Client(1)) await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        uint worker;
        using (HttpClient n1 = Client(1)) worker = await ClockApiTests.RegisterAsync(n1, "trainer", leaseMs: 600_000);
        ClusterRing ring = ClusterRing.FromView((await ViewAsync(1))!);
        ulong hash = Ring.NameHash("t");
        ulong[] keys = [.. Enumerable.Range(0, 3).SelectMany(n => Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k => ring.PrimaryOf(hash, k) == n).Take(Keys / 3)).Order()];

        using var stop = new CancellationTokenSource();
        int[] down = [0];   // the node killed now (0: none); pushers and readers use the others
        var pushed = new long[keys.Length];
        long pushes = 0, retries = 0, pulls = 0;
        // Failover time: from the SIGKILL to the first push acknowledged, sent after it, holding a key the victim was
        // primary of.
        long killedAt = 0;
        int victimIndex = -1;
        var failovers = new List<double>();
        // The pusher holds the gate for each push until it is acknowledged; a round's check takes it, so every
        // push is then either acknowledged or not sent, and each key must read exactly the sum of its pushes.
        var gate = new SemaphoreSlim(1, 1);
        var traces = new System.Collections.Concurrent.ConcurrentQueue<string>();

        Task pusher = Task.Run(async () =>
        {
            var random = new Random(1);
            ulong clock = 0;
            while (!stop.IsCancellationRequested)
            {
                await gate.WaitAsync();
                try
                {
                clock++;
                // Each push adds 1…3 to a random half of the keys.
                int[] chosen = [.. Enumerable.Range(0, keys.Length).Where(_ => random.Next(2) == 0)];
                if (chosen.Length == 0) chosen = [0];
                ulong[] some = [.. chosen.Select(i => keys[i])];
                float[] deltas = [.. chosen.Select(_ => (float)random.Next(1, 4))];
                long start = HistoryRecorder.Now();
                long tryStart = 0;
                int tries = 0;
                var trace = new System.Text.StringBuilder();
                bool acknowledged = false;
                while (!acknowledged)
                {
                    if (stop.IsCancellationRequested)
                    {
                        // The test ended with this push unanswered: it may or may not have taken effect.
                        for (int i = 0; i < chosen.Length; i++) _history.Push(0, some[i], start, (long)deltas[i], Outcome.Unknown);
                        return;
                    }
                    tries++;
                    tryStart = System.Diagnostics.Stopwatch.GetTimestamp();
                    int via = Via(random, down[0]);
                    using HttpClient http = Client(via);
                    http.Timeout = TimeSpan.FromSeconds(15);
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tables/t/push") { Content = Wire.Kv(Wire.PushBlock(some, deltas, 1)) };
                    request.Headers.Add(ParamDbHeaders.Worker, worker.ToString(CultureInfo.InvariantCulture));
                    request.Headers.Add(ParamDbHeaders.Clock, clock.ToString(CultureInfo.InvariantCulture));
                    try
                    {
                        using var reply = await http.SendAsync(request);
                        trace.Append(CultureInfo.InvariantCulture, $" [n{via}: {(int)reply.StatusCode} in {System.Diagnostics.Stopwatch.GetElapsedTime(tryStart).TotalMilliseconds:F0} ms]");
                        acknowledged = reply.StatusCode == HttpStatusCode.OK;
                        if (acknowledged) break;
                        string body = await reply.Content.ReadAsStringAsync();
                        Assert.True(reply.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.RequestTimeout or HttpStatusCode.MisdirectedRequest, $"push at clock {clock}: {(int)reply.StatusCode} {body}");
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        trace.Append(CultureInfo.InvariantCulture, $" [n{via}: {e.GetType().Name}]");
                        // A killed node, or one that stopped answering: the same push, at the same clock, elsewhere.
                    }
                    await Task.Delay(20);
                }
                // Retried at the same clock until acknowledged: one push that took effect once, somewhere in
                // [first try, acknowledgement].
                for (int i = 0; i < chosen.Length; i++)
                {
                    _history.Push(0, some[i], start, (long)deltas[i], Outcome.Ok);
                    pushed[chosen[i]] += (long)deltas[i];
                }
                Interlocked.Increment(ref pushes);
                long killed = Volatile.Read(ref killedAt);
                if (killed != 0 && tryStart >= killed && chosen.Any(i => ring.PrimaryOf(hash, keys[i]) == Volatile.Read(ref victimIndex)))
                {
                    lock (failovers) failovers.Add(System.Diagnostics.Stopwatch.GetElapsedTime(killed).TotalMilliseconds);
                    Volatile.Write(ref killedAt, 0);
                }
                Interlocked.Add(ref retries, tries - 1);
                if (tries > 1) traces.Enqueue($"clock {clock}: {trace}");
                }
                finally
                {
                    gate.Release();
                }
            }
        });
        Task reader = Task.Run(async () =>
        {
            var random = new Random(2);
            while (!stop.IsCancellationRequested)
            {
                int via = Via(random, down[0]);
                using HttpClient http = Client(via);
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
                int[] others = [.. Enumerable.Range(1, 3).Where(i => i != victim)];
                down[0] = victim;
                Volatile.Write(ref victimIndex, victim - 1);
                Volatile.Write(ref killedAt, System.Diagnostics.Stopwatch.GetTimestamp());
                await _cluster[victim]!.KillAsync();
                await WaitForAsync(others, $"round {round}: n{victim} declared down", v => v.Nodes.Single(n => n.Id == $"n{victim}").State == NodeState.Down && v.Unavailable == 0, TimeSpan.FromSeconds(30));
                await _cluster.StartAsync(victim, null, DownAfter);
                await WaitForAsync(others, $"round {round}: n{victim} caught up and up", v => v.Nodes.All(n => n.State == NodeState.Up) && v.UnderReplicated == 0, TimeSpan.FromSeconds(60));
                down[0] = 0;
                Volatile.Write(ref killedAt, 0);
                await gate.WaitAsync();
                try
                {
                    foreach (int i in Enumerable.Range(1, 3))
                    {
                        using HttpClient http = Client(i);
                        long start = HistoryRecorder.Now();
                        float[] values = await Wire.PullAsync(http, "t", keys);
                        var off = new List<string>();
                        for (int k = 0; k < keys.Length; k++)
                        {
                            _history.Pull(2, keys[k], start, (long)values[k]);
                            if (pushed[k] != (long)values[k]) off.Add($"key {keys[k]} (primary n{ring.PrimaryOf(hash, keys[k]) + 1}): pushed {pushed[k]} in all, n{i} reads {values[k]}");
                        }
                        Assert.True(off.Count == 0, $"after round {round} (n{victim} killed):\n{string.Join("\n", off)}\npushes retried:\n{string.Join("\n", traces.TakeLast(15))}\n{string.Join("\n", _cluster.LogTails(40))}");
                    }
                    traces.Clear();
                }
                finally
                {
                    gate.Release();
                }
                Assert.False(pusher.IsFaulted, pusher.Exception?.ToString());
            }
        }
        finally
        {
            await stop.CancelAsync();
        }
        await pusher;
        await reader;

        // A final read through every node: the sum of every push, exactly.
        var wrong = new List<string>();
        foreach (int i in Enumerable.Range(1, 3))
        {
            using HttpClient http = Client(i);
            long start = HistoryRecorder.Now();
            float[] values = await Wire.PullAsync(http, "t", keys);
            for (int k = 0; k < keys.Length; k++)
            {
                _history.Pull(2, keys[k], start, (long)values[k]);
                if (pushed[k] != (long)values[k]) wrong.Add($"key {keys[k]} (primary n{ring.PrimaryOf(hash, keys[k]) + 1}): pushed {pushed[k]} in all, n{i} reads {values[k]}");
            }
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong) + "\n" + string.Join("\n", _cluster.LogTails(30)));
        foreach (ulong key in _history.Keys)
        {
            Verdict verdict = Linearizability.Check(_history.Of(key));
            Assert.True(verdict.IsLinearizable, $"key {key}: {verdict.Explanation}");
        }
        double[] times = [.. failovers.Order()];
        output.WriteLine($"failover, SIGKILL to first acknowledged push on the victim's ranges, {times.Length} kills: p50 {Percentile(times, 0.50):F0} ms, p99 {Percentile(times, 0.99):F0} ms, max {times.LastOrDefault():F0} ms; all: {string.Join(' ', times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))}");
        output.WriteLine($"{Rounds} rounds in {(Environment.TickCount64 - startedAt) / 1000.0:F1} s: {pushes} pushes acknowledged ({retries} retries), {pulls} pulls, {_history.Count} operations checked, 0 lost, 0 applied twice");
    }

    /// <summary>The nearest-rank percentile of sorted <paramref name="sorted"/>.</summary>
    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>A node to send through: any but the one killed now.</summary>
    private static int Via(Random random, int down)
    {
        int via;
        do via = random.Next(1, 4);
        while (via == down);
        return via;
    }
}
