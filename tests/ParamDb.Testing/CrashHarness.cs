using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using ParamDb.Protocol;

namespace ParamDb.Testing;

/// <summary>What a crash run does.</summary>
public sealed record CrashOptions
{
    /// <summary>Kill-and-restart rounds.</summary>
    public int Rounds { get; init; } = 20;

    /// <summary>Workers pushing at once, each from its own loop.</summary>
    public int Workers { get; init; } = 4;

    /// <summary>Seed of the kill moments; a failure names it so the run can be repeated.</summary>
    public int Seed { get; init; } = Environment.TickCount;

    /// <summary>The node's <c>--durability</c>: <c>wal</c> or <c>fsync</c> (checkpoint mode promises no such thing).</summary>
    public string Durability { get; init; } = "wal";

    /// <summary>Kill moments are drawn from this window after the workers start, in milliseconds.</summary>
    public (int Min, int Max) KillAfterMs { get; init; } = (50, 700);

    /// <summary>Keep the data directory and the node's output when an invariant breaks, to look at them.</summary>
    public bool KeepOnFailure { get; init; }

    /// <summary>The node's <c>--checkpoint-interval</c>: short, so kills also land during checkpoints.</summary>
    public string CheckpointInterval { get; init; } = "300ms";
}

/// <summary>What a crash run saw; it throws instead of returning when an invariant broke.</summary>
/// <param name="Rounds">Rounds completed.</param>
/// <param name="Acknowledged">Pushes acknowledged before the kills.</param>
/// <param name="InFlight">Pushes a kill cut off before their reply, all retried.</param>
/// <param name="RetriesApplied">Retries the node applied: the original never became durable.</param>
/// <param name="RetriesSkipped">Retries the node skipped: the original had been logged before the kill.</param>
public sealed record CrashReport(int Rounds, long Acknowledged, long InFlight, long RetriesApplied, long RetriesSkipped);

/// <summary>
/// Kills a real node with SIGKILL at random moments while workers push with clocks, restarts it, and checks
/// that no acknowledged push was lost and that every push cut off in flight, retried at the same clock, landed
/// exactly once (docs/consistency.md, docs/durability.md).
/// </summary>
/// <remarks>
/// Worker <c>w</c> pushes +1 to its own 32 rows and to the shared row 0 at clocks 1, 2, 3…; one push per clock.
/// So once its cut-off push is retried, each of its rows must hold exactly its clock, and row 0 the sum of all
/// clocks. A lost acknowledged push shows as a row below its clock; a retry applied twice, as one above.
/// </remarks>
public static class CrashHarness
{
    private const string Table = "crash";
    private const int Dim = 4;
    private const int RowsPerWorker = 32;

    /// <summary>Runs <see cref="CrashOptions.Rounds"/> rounds in a fresh data directory, deleted afterwards.</summary>
    /// <param name="options">The run.</param>
    /// <param name="log">Progress lines.</param>
    /// <exception cref="CrashInvariantException">A row does not hold what the acknowledged pushes say.</exception>
    public static async Task<CrashReport> RunAsync(CrashOptions options, Action<string> log)
    {
        if (options.Durability is not ("wal" or "fsync"))
            throw new ArgumentException("Only wal and fsync durability promise that acknowledged pushes survive a kill.", nameof(options));
        var random = new Random(options.Seed);
        string data = RunningServer.NewTempDirectory();
        string logFile = data + ".log";
        bool keep = false;
        string[] nodeArgs = ["--durability", options.Durability, "--checkpoint-interval", options.CheckpointInterval];
        var workers = new CrashWorker[options.Workers];
        long acknowledged = 0, inFlight = 0, applied = 0, skipped = 0;
        try
        {
            using (NodeProcess first = await NodeProcess.StartLoggingAsync(data, logFile, nodeArgs))
            using (HttpClient http = Client(first))
            {
                await SendAsync(http, HttpMethod.Put, $"/v1/tables/{Table}", $$"""{"dim":{{Dim}}}""");
                for (int w = 0; w < workers.Length; w++)
                {
                    using var reply = await SendAsync(http, HttpMethod.Post, "/v1/workers", $$"""{"name":"crash-{{w}}","leaseMs":3600000}""");
                    using var doc = System.Text.Json.JsonDocument.Parse(await reply.Content.ReadAsStringAsync());
                    workers[w] = new CrashWorker(doc.RootElement.GetProperty("worker").GetUInt32(), w);
                }
                await first.KillAsync();
            }
            for (int round = 1; round <= options.Rounds; round++)
            {
                using NodeProcess node = await NodeProcess.StartLoggingAsync(data, logFile, nodeArgs);
                using HttpClient http = Client(node);
                foreach (CrashWorker worker in workers)
                {
                    if (worker.InFlight == 0) continue;
                    inFlight++;
                    PushResult retry = await worker.PushAsync(http, worker.InFlight);
                    if (retry.Applied == 0) skipped++;
                    else applied++;
                    log($"  worker {worker.Index} retried clock {worker.InFlight}: applied {retry.Applied}");
                    worker.Acknowledge();
                }
                await VerifyAsync(http, workers, round, options.Seed);

                Task<long>[] loops = new Task<long>[workers.Length];
                for (int w = 0; w < workers.Length; w++) loops[w] = workers[w].PushUntilKilledAsync(http);
                int killAfter = random.Next(options.KillAfterMs.Min, options.KillAfterMs.Max);
                await Task.Delay(killAfter);
                await node.KillAsync();
                foreach (Task<long> loop in loops) acknowledged += await loop.WaitAsync(TimeSpan.FromSeconds(60));
                log($"round {round}: killed after {killAfter} ms; clocks {string.Join(", ", workers.Select(w => w.Clock))}; in flight {workers.Count(w => w.InFlight != 0)}");
            }
            using (NodeProcess last = await NodeProcess.StartLoggingAsync(data, logFile, nodeArgs))
            using (HttpClient http = Client(last))
            {
                foreach (CrashWorker worker in workers)
                {
                    if (worker.InFlight == 0) continue;
                    inFlight++;
                    if ((await worker.PushAsync(http, worker.InFlight)).Applied == 0) skipped++;
                    else applied++;
                    worker.Acknowledge();
                }
                await VerifyAsync(http, workers, options.Rounds + 1, options.Seed);
            }
            return new CrashReport(options.Rounds, acknowledged, inFlight, applied, skipped);
        }
        catch (CrashInvariantException e)
        {
            // The node's own account of its last recoveries and checkpoints: a failure in CI is seen only once.
            keep = options.KeepOnFailure;
            string kept = keep ? $" Data kept in {data}, node output in {logFile}." : "";
            throw new CrashInvariantException($"{e.Message}{kept}{Environment.NewLine}The node's last output:{Environment.NewLine}{Tail(logFile, 80)}");
        }
        finally
        {
            if (!keep)
            {
                if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
                File.Delete(logFile);
            }
        }
    }

    /// <summary>The last <paramref name="lines"/> lines of a file, or a note when it cannot be read.</summary>
    private static string Tail(string path, int lines)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            string[] all = new StreamReader(file).ReadToEnd().Split('\n');
            return string.Join('\n', all[Math.Max(0, all.Length - lines)..]);
        }
        catch (IOException e)
        {
            return $"(could not read {path}: {e.Message})";
        }
    }

    private static HttpClient Client(NodeProcess node) => new() { BaseAddress = node.Http1, Timeout = TimeSpan.FromSeconds(30) };

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string path, string json)
    {
        var reply = await http.SendAsync(new HttpRequestMessage(method, path) { Content = new StringContent(json, Encoding.UTF8, MediaTypes.Json) });
        if (!reply.IsSuccessStatusCode)
            throw new InvalidOperationException($"{method} {path}: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
        return reply;
    }

    /// <summary>Every worker's rows hold its clock; row 0 holds the sum of the clocks.</summary>
    private static async Task VerifyAsync(HttpClient http, CrashWorker[] workers, int round, int seed)
    {
        long sum = 0;
        foreach (CrashWorker worker in workers)
        {
            sum += (long)worker.Clock;
            float[] values = await PullAsync(http, worker.OwnKeys);
            for (int i = 0; i < values.Length; i++)
            {
                if (values[i] != worker.Clock)
                    throw new CrashInvariantException($"Round {round} (seed {seed}): worker {worker.Index}'s row {worker.OwnKeys[i / Dim]} holds {values[i]}, but its pushes were acknowledged up to clock {worker.Clock}: {(values[i] < worker.Clock ? "an acknowledged push was lost" : "a push was applied twice")}.");
            }
        }
        float[] shared = await PullAsync(http, [0]);
        foreach (float v in shared)
        {
            if (v != sum)
                throw new CrashInvariantException($"Round {round} (seed {seed}): the shared row holds {v}; the workers' acknowledged clocks add up to {sum}.");
        }
    }

    private static async Task<float[]> PullAsync(HttpClient http, ulong[] keys)
    {
        var block = new byte[KvBlockWriter.SizeOf(false, keys.Length, 0, false)];
        KvBlockWriter.Write(block, keys, default, 0, withValues: false);
        using var content = new ByteArrayContent(block);
        content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.KvBlock);
        using var reply = await http.PostAsync($"/v1/tables/{Table}/pull", content);
        byte[] bytes = await reply.Content.ReadAsByteArrayAsync();
        if (!reply.IsSuccessStatusCode) throw new InvalidOperationException($"pull: {(int)reply.StatusCode} {Encoding.UTF8.GetString(bytes)}");
        if (!KvBlock.TryParse(bytes, KvExpect.Values, int.MaxValue, out KvBlock parsed, out ProtocolError error))
            throw new InvalidOperationException($"pull reply: {error.Detail}");
        return parsed.Values(bytes).ToArray();
    }

    /// <summary>One worker: its clock, the push a kill may have cut off, and its rows.</summary>
    private sealed class CrashWorker
    {
        private readonly byte[] _block;

        public CrashWorker(uint id, int index)
        {
            Id = id;
            Index = index;
            OwnKeys = new ulong[RowsPerWorker];
            for (int i = 0; i < RowsPerWorker; i++) OwnKeys[i] = (ulong)(index + 1) * 1_000_000 + (ulong)i * 7919;
            ulong[] keys = [0, .. OwnKeys];
            float[] ones = new float[keys.Length * Dim];
            Array.Fill(ones, 1f);
            _block = new byte[KvBlockWriter.SizeOf(false, keys.Length, Dim, true)];
            KvBlockWriter.Write(_block, keys, ones, Dim, withValues: true);
        }

        public uint Id { get; }
        public int Index { get; }
        public ulong[] OwnKeys { get; }

        /// <summary>The newest acknowledged clock.</summary>
        public ulong Clock { get; private set; }

        /// <summary>A clock sent without a reply (the node died); 0 when none.</summary>
        public ulong InFlight { get; private set; }

        public void Acknowledge()
        {
            Clock = InFlight;
            InFlight = 0;
        }

        /// <summary>Pushes clock after clock until the node dies; returns how many were acknowledged.</summary>
        public async Task<long> PushUntilKilledAsync(HttpClient http)
        {
            long acked = 0;
            while (true)
            {
                InFlight = Clock + 1;
                try
                {
                    await PushAsync(http, InFlight);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    return acked;   // the kill: InFlight stays set, to be retried
                }
                Acknowledge();
                acked++;
            }
        }

        public async Task<PushResult> PushAsync(HttpClient http, ulong clock)
        {
            using var content = new ByteArrayContent(_block);
            content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.KvBlock);
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/tables/{Table}/push") { Content = content };
            request.Headers.Add("ParamDb-Worker", Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.Add("ParamDb-Clock", clock.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var reply = await http.SendAsync(request);
            // A live node's error reply is a bug, not a kill: a killed node sends no reply at all.
            if (!reply.IsSuccessStatusCode)
                throw new InvalidOperationException($"push at clock {clock}: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
            return (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.PushResult))!;
        }
    }
}

/// <summary>A crash run found a row that does not hold what the acknowledged pushes say.</summary>
public sealed class CrashInvariantException(string message) : Exception(message);
