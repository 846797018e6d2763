using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using ParamDb.Bench;
using ParamDb.Client;

// paramdb-bench: runs the dense / sparse / small workloads against a running node and reports MB/s,
// keys/s, p50/p99 latency and request counts per direction. See ../README.md for the commands.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
if (options.Help)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

var version = options.Http2 ? HttpVersion.Version20 : HttpVersion.Version11;
HttpClient Http(Uri url) => new(new SocketsHttpHandler
{
    // One connection per loop (HTTP/1.1), plus one for table management.
    MaxConnectionsPerServer = options.Connections + 1,
    EnableMultipleHttp2Connections = true,
    InitialHttp2StreamWindowSize = 16 * 1024 * 1024,
    AutomaticDecompression = DecompressionMethods.None,
    UseCookies = false,
    UseProxy = false,
    PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
})
{
    BaseAddress = url,
    Timeout = TimeSpan.FromMinutes(5),
    DefaultRequestVersion = version,
    DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
};
var clientOptions = new ParamDbClientOptions
{
    Compression = options.Lz4 ? ParamDbCompression.Lz4 : ParamDbCompression.None,
    Routing = options.Routing ? ParamDbRouting.Auto : ParamDbRouting.Off,
};
// --shards: one client per independent node; otherwise the one node (or cluster) at --url.
Uri[] urls = options.Shards.Count > 0 ? [.. options.Shards] : [options.Url];
HttpClient[] https = Array.ConvertAll(urls, Http);
ParamDbClient[] dbs = Array.ConvertAll(https, h => new ParamDbClient(h, clientOptions));
var http = https[0];
var db = dbs[0];
var raw = new RawTransport(http, version, options.Lz4);

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };

ParamDb.Protocol.HealthReply health;
try
{
    health = await db.HealthAsync(cancel.Token);
}
catch (HttpRequestException e)
{
    Console.Error.WriteLine($"No ParamDb node answers at {options.Url}: {e.Message}");
    return 1;
}
string commandLine = "paramdb-bench " + string.Join(' ', args);
Console.WriteLine($"{commandLine}");
Console.WriteLine($"server {options.Url} (paramdb {health.Version}), {(options.Stream ? "stream" : options.Http2 ? "HTTP/2" : "HTTP/1.1")}, " +
    $"{options.Connections} connection(s), {(options.Stream ? $"{options.InFlight} in flight per stream, " : "")}{(options.Lz4 ? "lz4" : "no compression")}, {(options.Shards.Count > 0 ? $"via ParamDbClient, cut over {options.Shards.Count} independent nodes" : options.ViaClient ? $"via ParamDbClient (routing {(options.Routing ? "auto" : "off")})" : "raw prebuilt bodies")}, " +
    $"{Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}");
Console.WriteLine();

await using StreamLoops? streams = options.Stream ? await StreamLoops.OpenAsync(options, cancel.Token) : null;
var created = new List<string>();
var workloads = new Workloads(options, dbs, raw, streams, created);
var results = new List<(PhaseResult Median, List<PhaseResult> Repeats)>();
int exitCode = 0;
try
{
    NodeCpu? nodeCpu = options.NodePids.Count > 0 ? new NodeCpu(options.NodePids) : null;
    Console.WriteLine($"{"workload",-15} {"op",-5} {"requests",9} {"MB/s",9} {"keys/s",12} {"req/s",9} {"p50 ms",8} {"p99 ms",8} {"bench s/GB",10}{(nodeCpu is null ? "" : $" {"node s/GB",10}")}");
    foreach (var (name, setup) in workloads.Selected())
    {
        Phase[] phases = await setup();
        var repeats = new List<PhaseResult>[phases.Length];
        for (int p = 0; p < phases.Length; p++) repeats[p] = [];
        // Repeat the whole workload (push, then pull) so each repeat sees the same order of operations.
        for (int r = 0; r < options.Repeat; r++)
        {
            for (int p = 0; p < phases.Length; p++)
            {
                var phase = phases[p];
                repeats[p].Add(await Measurement.RunAsync(phase.Workload, phase.Op, phase.Loops, phase.Warmup, phase.Iterations,
                    options.Duration, phase.PayloadBytes, phase.Keys, cancel.Token, nodeCpu));
            }
        }
        for (int p = 0; p < phases.Length; p++)
        {
            var median = Measurement.Median(repeats[p]);
            results.Add((median, repeats[p]));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{median.Workload,-15} {median.Op,-5} {median.Requests,9} {median.MBPerSecond,9:F1} {median.KeysPerSecond,12:N0} {median.RequestsPerSecond,9:F0} {median.P50Ms,8:F3} {median.P99Ms,8:F3} {median.BenchCpuSecondsPerGB ?? 0,10:F2}{(median.NodeCpuSecondsPerGB is { } cpu ? $" {cpu,10:F2}" : "")}"));
        }
    }
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    Console.Error.WriteLine("Cancelled.");
    exitCode = 130;
}
finally
{
    foreach (string table in created)
    {
        foreach (var shard in dbs)
        {
            try { await shard.DeleteTableAsync(table); }
            catch (Exception e) when (e is ParamDbException or HttpRequestException) { Console.Error.WriteLine($"Could not delete {table} at {shard.BaseAddress}: {e.Message}"); }
        }
    }
}

if (options.Repeat > 1) Console.WriteLine($"\nmedian of {options.Repeat} repeats per metric; MB = 10^6 bytes of values");
else Console.WriteLine("\nMB = 10^6 bytes of values");

if (options.JsonPath is { } path)
{
    var report = new
    {
        commandLine,
        date = DateTimeOffset.UtcNow,
        server = new { url = options.Url.ToString(), version = health.Version },
        machine = new { cores = Environment.ProcessorCount, os = RuntimeInformation.OSDescription, runtime = RuntimeInformation.FrameworkDescription },
        settings = new
        {
            connections = options.Connections, http2 = options.Http2, stream = options.Stream, inFlight = options.InFlight, lz4 = options.Lz4, zeros = options.Zeros, viaClient = options.ViaClient,
            repeat = options.Repeat, iterations = options.Iterations, durationSeconds = options.Duration?.TotalSeconds, warmup = options.Warmup,
        },
        results = results.ConvertAll(r => new
        {
            workload = r.Median.Workload,
            op = r.Median.Op,
            mbPerSecond = r.Median.MBPerSecond,
            keysPerSecond = r.Median.KeysPerSecond,
            requestsPerSecond = r.Median.RequestsPerSecond,
            p50Ms = r.Median.P50Ms,
            p99Ms = r.Median.P99Ms,
            nodeCpuSecondsPerGB = r.Median.NodeCpuSecondsPerGB,
            benchCpuSecondsPerGB = r.Median.BenchCpuSecondsPerGB,
            requests = r.Median.Requests,
            repeats = r.Repeats.ConvertAll(x => new
            {
                requests = x.Requests, seconds = x.Seconds, mbPerSecond = x.MBPerSecond, keysPerSecond = x.KeysPerSecond,
                p50Ms = x.P50Ms, p99Ms = x.P99Ms, maxMs = x.MaxMs, nodeCpuSeconds = x.NodeCpuSeconds, benchCpuSeconds = x.BenchCpuSeconds,
            }),
        }),
    };
    await File.WriteAllTextAsync(path, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"wrote {path}");
}
foreach (var d in dbs) d.Dispose();
foreach (var h in https) h.Dispose();
return exitCode;
