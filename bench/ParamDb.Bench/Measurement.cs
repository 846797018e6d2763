using System.Diagnostics;

namespace ParamDb.Bench;

/// <summary>What one phase (one workload, one direction, one repeat) measured.</summary>
internal sealed record PhaseResult(
    string Workload, string Op, int Connections, long Requests, double Seconds,
    long PayloadBytes, long Keys, double P50Ms, double P99Ms, double MaxMs)
{
    /// <summary>CPU seconds the watched node processes spent during the measured part (<c>--node-pids</c>); null when none are watched.</summary>
    public double? NodeCpuSeconds { get; init; }

    /// <summary>CPU seconds this load generator spent during the measured part: it shares the cores with the node.</summary>
    public double BenchCpuSeconds { get; init; }

    /// <summary>The load generator's CPU seconds per GB (10^9 bytes) of values moved.</summary>
    public double? BenchCpuSecondsPerGB => PerGB(BenchCpuSeconds);

    /// <summary>Node CPU seconds per GB (10^9 bytes) of values moved.</summary>
    public double? NodeCpuSecondsPerGB => PerGB(NodeCpuSeconds);

    private double? PerGB(double? seconds) => seconds is { } s && PayloadBytes > 0 ? s / (PayloadBytes / 1e9) : null;

    /// <summary>Values payload, in MB (10^6 bytes) per second.</summary>
    public double MBPerSecond => PayloadBytes / 1e6 / Seconds;

    /// <summary>Rows moved per second.</summary>
    public double KeysPerSecond => Keys / Seconds;

    /// <summary>Requests per second.</summary>
    public double RequestsPerSecond => Requests / Seconds;
}

/// <summary>Runs one phase: N loops, each sending requests back to back, timing each one.</summary>
internal static class Measurement
{
    public static async Task<PhaseResult> RunAsync(
        string workload, string op, BenchOp[] loops, int warmup, int iterations, TimeSpan? duration,
        long payloadBytesPerRequest, int keysPerRequest, CancellationToken cancellationToken, NodeCpu? nodeCpu = null)
    {
        await Task.WhenAll(Array.ConvertAll(loops, loop => Task.Run(async () =>
        {
            for (int i = 0; i < warmup; i++) await loop.RunAsync(cancellationToken);
        }, cancellationToken)));

        // Latencies in Stopwatch ticks, one list per loop, sized up front so the measured part does not grow them.
        var latencies = new List<long>[loops.Length];
        for (int i = 0; i < loops.Length; i++) latencies[i] = new List<long>(duration is null ? iterations : 1 << 16);
        long deadline = duration is { } d ? Stopwatch.GetTimestamp() + (long)(d.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;

        double cpuBefore = nodeCpu?.Seconds() ?? 0;
        TimeSpan benchCpuBefore = Environment.CpuUsage.TotalTime;
        var wall = Stopwatch.StartNew();
        var tasks = new Task[loops.Length];
        for (int i = 0; i < loops.Length; i++)
        {
            BenchOp loop = loops[i];
            List<long> times = latencies[i];
            tasks[i] = Task.Run(async () =>
            {
                while (duration is null ? times.Count < iterations : Stopwatch.GetTimestamp() < deadline)
                {
                    long start = Stopwatch.GetTimestamp();
                    await loop.RunAsync(cancellationToken);
                    times.Add(Stopwatch.GetTimestamp() - start);
                }
            }, cancellationToken);
        }
        await Task.WhenAll(tasks);
        double seconds = wall.Elapsed.TotalSeconds;
        double? cpu = nodeCpu is null ? null : nodeCpu.Seconds() - cpuBefore;
        double benchCpu = (Environment.CpuUsage.TotalTime - benchCpuBefore).TotalSeconds;

        long requests = 0;
        foreach (var times in latencies) requests += times.Count;
        var all = new long[requests];
        int at = 0;
        foreach (var times in latencies)
        {
            times.CopyTo(all, at);
            at += times.Count;
        }
        Array.Sort(all);
        return new PhaseResult(
            workload, op, loops.Length, requests, seconds,
            payloadBytesPerRequest * requests, (long)keysPerRequest * requests,
            Milliseconds(Percentile(all, 0.50)), Milliseconds(Percentile(all, 0.99)), Milliseconds(all.Length == 0 ? 0 : all[^1])) { NodeCpuSeconds = cpu, BenchCpuSeconds = benchCpu };
    }

    /// <summary>Nearest-rank percentile of sorted ticks.</summary>
    private static long Percentile(long[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>The median repeat of each metric (each metric on its own, so p99 is the median p99).</summary>
    public static PhaseResult Median(IReadOnlyList<PhaseResult> repeats)
    {
        var first = repeats[0];
        // Throughput metrics are medians of rates; re-expressed through Seconds so the record stays consistent.
        double mbps = MedianOf(repeats, r => r.MBPerSecond);
        double seconds = first.PayloadBytes > 0 ? first.PayloadBytes / 1e6 / mbps : MedianOf(repeats, r => r.Seconds);
        return first with
        {
            Seconds = seconds,
            P50Ms = MedianOf(repeats, r => r.P50Ms),
            P99Ms = MedianOf(repeats, r => r.P99Ms),
            MaxMs = MedianOf(repeats, r => r.MaxMs),
            // CPU per GB is the steadier figure (docs/benchmarks.md): the median of the repeats', expressed as seconds.
            NodeCpuSeconds = first.NodeCpuSeconds is null ? null : MedianOf(repeats, r => r.NodeCpuSecondsPerGB ?? 0) * first.PayloadBytes / 1e9,
            BenchCpuSeconds = MedianOf(repeats, r => r.BenchCpuSecondsPerGB ?? 0) * first.PayloadBytes / 1e9,
        };
    }

    private static double MedianOf(IReadOnlyList<PhaseResult> repeats, Func<PhaseResult, double> metric)
    {
        var values = new double[repeats.Count];
        for (int i = 0; i < values.Length; i++) values[i] = metric(repeats[i]);
        Array.Sort(values);
        int mid = values.Length / 2;
        return values.Length % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }
}
