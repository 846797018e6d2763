using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;
using ParamDb.Testing.History;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// A training worker for the fault tests (docs/replication.md, "Testing"): one clocked <c>add</c> push after another
/// to a fixed key set of a dim-1 table, each adding 1…3 to a random half of the keys and retried at the same clock,
/// through any node that is not down, until it is acknowledged. Every push goes in <see cref="History"/>, and the
/// acknowledged sums in <see cref="Pushed"/>. A check takes <see cref="PauseAsync"/>: then no push is in flight, so
/// every key must read exactly its sum.
/// </summary>
internal sealed class ClockedPusher(ProcessCluster cluster, int nodes, string table, uint worker, ulong[] keys, HistoryRecorder history)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConcurrentQueue<string> _traces = new();
    private readonly HashSet<int> _down = [];
    private long _pushes, _retries;
    // The last few acknowledged pushes of each key (time, clock, delta, tries), for a failed check's message.
    private readonly ConcurrentQueue<string>[] _recent = [.. keys.Select(_ => new ConcurrentQueue<string>())];

    /// <summary>
    /// Creates table <c>t</c> (dim 1, <c>add</c>) through node 1, registers a worker, and returns a pusher of
    /// <paramref name="perNode"/> keys (one per ring block) of each node's arcs, by the ring with every node up
    /// (unless <paramref name="waitUp"/> is false: a node armed to die may be gone by then).
    /// </summary>
    public static async Task<(ClockedPusher Pusher, ClusterRing Ring)> StartAsync(ProcessCluster cluster, int nodes, int perNode, HistoryRecorder history, bool waitUp = true)
    {
        using HttpClient n1 = cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        uint worker = await ClockApiTests.RegisterAsync(n1, "trainer", leaseMs: 600_000);
        if (waitUp) await cluster.WaitForViewAsync([1], "every node up", v => v.Nodes.Count == nodes && v.Nodes.All(n => n.State == NodeState.Up), TimeSpan.FromSeconds(60));
        ClusterRing ring = ClusterRing.FromView((await cluster.ViewAsync(1))!);
        ulong hash = Ring.NameHash("t");
        ulong[] keys = [.. Enumerable.Range(0, nodes).SelectMany(n => Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k => ring.PrimaryOf(hash, k) == n).Take(perNode)).Order()];
        return (new ClockedPusher(cluster, nodes, "t", worker, keys, history), ring);
    }

    /// <summary>The keys pushed, ascending.</summary>
    public ulong[] Keys => keys;

    /// <summary>Each key's sum of acknowledged pushes; read it while paused.</summary>
    public long[] Pushed { get; } = new long[keys.Length];

    public long Pushes => Interlocked.Read(ref _pushes);

    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>How long a push in flight when the run stops is still retried (to end with exact sums).</summary>
    public TimeSpan GiveUpAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Called after each acknowledged push with the start of its last try and the indices of its keys.</summary>
    public Action<long, int[], string>? Acknowledged { get; set; }

    /// <summary>Sends through nodes other than <paramref name="node"/> until <see cref="Revive"/>.</summary>
    public void Avoid(int node)
    {
        lock (_down) _down.Add(node);
    }

    public void Revive(int node)
    {
        lock (_down) _down.Remove(node);
    }

    /// <summary>A node to send through: any that is not avoided.</summary>
    public int Via(Random random)
    {
        lock (_down)
        {
            int via;
            do via = random.Next(1, nodes + 1);
            while (_down.Contains(via));
            return via;
        }
    }

    /// <summary>Waits for the push in flight to be acknowledged and holds the next; dispose to go on.</summary>
    public async Task<IDisposable> PauseAsync()
    {
        await _gate.WaitAsync();
        return new Resume(_gate);
    }

    /// <summary>Waits until <paramref name="count"/> pushes have been acknowledged in all; fails the test after 60 s.</summary>
    public async Task WaitForPushesAsync(long count)
    {
        long deadline = Environment.TickCount64 + 60_000;
        while (Pushes < count)
        {
            Assert.True(Environment.TickCount64 < deadline, $"{Pushes} of {count} pushes acknowledged within 60 s\n{TakeTraces()}\n{string.Join("\n", cluster.LogTails(40))}");
            await Task.Delay(20);
        }
    }

    /// <summary>The pushes that needed more than one try since the last call, for a failure's message.</summary>
    public string TakeTraces()
    {
        var lines = new List<string>();
        while (_traces.TryDequeue(out string? line)) lines.Add(line);
        return string.Join("\n", lines.TakeLast(15));
    }

    /// <summary>Pushes until <paramref name="stop"/>; a push in flight then is still retried until acknowledged, for up to a minute.</summary>
    public Task RunAsync(CancellationToken stop) => Task.Run(async () =>
    {
        var random = new Random(1);
        ulong clock = 0;
        while (!stop.IsCancellationRequested)
        {
            using (await PauseAsync())
            {
                if (!await PushOnceAsync(++clock, random, stop)) return;
            }
        }
    });

    private async Task<bool> PushOnceAsync(ulong clock, Random random, CancellationToken stop)
    {
        int[] chosen = [.. Enumerable.Range(0, keys.Length).Where(_ => random.Next(2) == 0)];
        if (chosen.Length == 0) chosen = [0];
        ulong[] some = [.. chosen.Select(i => keys[i])];
        float[] deltas = [.. chosen.Select(_ => (float)random.Next(1, 4))];
        long start = HistoryRecorder.Now(), tryStart = 0;
        int tries = 0;
        var trace = new System.Text.StringBuilder();
        while (true)
        {
            // At the end a push in flight is still retried until acknowledged (every node is up by then), so the
            // final reads must equal the sums exactly; only one stuck for a minute is given up.
            if (stop.IsCancellationRequested && Stopwatch.GetElapsedTime(start) >= GiveUpAfter)
            {
                for (int i = 0; i < chosen.Length; i++) history.Push(0, some[i], start, (long)deltas[i], Outcome.Unknown);
                return false;
            }
            tries++;
            tryStart = Stopwatch.GetTimestamp();
            int via = Via(random);
            using HttpClient http = cluster.Client(via);
            http.Timeout = TimeSpan.FromSeconds(15);
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{table}/push") { Content = Wire.Kv(Wire.PushBlock(some, deltas, 1)) };
            request.Headers.Add(ParamDbHeaders.Worker, worker.ToString(CultureInfo.InvariantCulture));
            request.Headers.Add(ParamDbHeaders.Clock, clock.ToString(CultureInfo.InvariantCulture));
            try
            {
                using var reply = await http.SendAsync(request);
                trace.Append(CultureInfo.InvariantCulture, $" [n{via}: {(int)reply.StatusCode} in {Stopwatch.GetElapsedTime(tryStart).TotalMilliseconds:F0} ms]");
                if (reply.StatusCode == HttpStatusCode.OK) break;
                string body = await reply.Content.ReadAsStringAsync();
                if (Stopwatch.GetElapsedTime(tryStart) > TimeSpan.FromMilliseconds(200)) trace.Append(CultureInfo.InvariantCulture, $" ({body[..Math.Min(body.Length, 300)]})");
                Assert.True(reply.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.RequestTimeout or HttpStatusCode.MisdirectedRequest, $"push at clock {clock}: {(int)reply.StatusCode} {body}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // A killed node, or one that stopped answering: the same push, at the same clock, elsewhere.
                trace.Append(CultureInfo.InvariantCulture, $" [n{via}: {e.GetType().Name}]");
            }
            await Task.Delay(20, CancellationToken.None);
        }
        // Retried at the same clock until acknowledged: one push that took effect once, somewhere in [first try, ack].
        for (int i = 0; i < chosen.Length; i++)
        {
            history.Push(0, some[i], start, (long)deltas[i], Outcome.Ok);
            Pushed[chosen[i]] += (long)deltas[i];
            ConcurrentQueue<string> recent = _recent[chosen[i]];
            recent.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} clock {clock} +{deltas[i]}, sum {Pushed[chosen[i]]}, tries:{(tries > 1 ? trace.ToString() : " 1")}");
            while (recent.Count > 6) recent.TryDequeue(out _);
        }
        Interlocked.Increment(ref _pushes);
        Interlocked.Add(ref _retries, tries - 1);
        if (tries > 1) _traces.Enqueue($"clock {clock}:{trace}");
        Acknowledged?.Invoke(tryStart, chosen, trace.ToString());
        return true;
    }

    /// <summary>
    /// Reads every key through each of <paramref name="through"/> (the pusher paused by the caller) and returns what
    /// differs from <see cref="Pushed"/>; the reads go in the history as client 2.
    /// </summary>
    public async Task<List<string>> CheckSumsAsync(IEnumerable<int> through)
    {
        var off = new List<string>();
        foreach (int i in through)
        {
            using HttpClient http = cluster.Client(i);
            long start = HistoryRecorder.Now();
            float[] values = await Wire.PullAsync(http, table, keys);
            for (int k = 0; k < keys.Length; k++)
            {
                history.Pull(2, keys[k], start, (long)values[k]);
                if (Pushed[k] != (long)values[k]) off.Add($"key {keys[k]}: pushed {Pushed[k]} in all, n{i} reads {values[k]}; its last pushes:\n  {string.Join("\n  ", _recent[k])}");
            }
        }
        return off;
    }

    private sealed class Resume(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }
}
