using System.Globalization;

namespace ParamDb.Bench;

/// <summary>The command line of <c>paramdb-bench</c>; every option has a default.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        paramdb-bench: load generator for a running ParamDb node.

          --url URL            server address (default http://127.0.0.1:7420; the h2c port with --http2)
          --workload W         dense | sparse | small | all (default all); a comma list works too
          --keys K             dense layout: range | explicit | both (default both)
          --connections N      concurrent request loops, one connection each (default 1)
          --iterations N       measured requests per loop and phase (default: dense 40, sparse 100, small 2000)
          --duration S         measure each phase for S seconds instead of a request count
          --sparse-keys N      keys per W-sparse request (default 10,000; e.g. 3,334 to send one node what a
                               three-node cluster's smart client sends each node)
          --warmup N           unmeasured requests per loop before each phase (default: dense 5, sparse 10, small 200)
          --repeat R           repeat every measurement R times and report the median (default 1)
          --lz4                Content-Encoding: lz4 on requests, Accept-Encoding: lz4 on pulls
          --zeros F            fraction of pushed values that are 0, to give LZ4 something to do (default 0)
          --http2              speak HTTP/2 with prior knowledge (point --url at the h2c port, 7421)
          --stream             send the requests as frames on POST /v1/stream, one stream per connection
                               (implies --http2; point --url at the h2c port, 7421)
          --in-flight N        with --stream: requests kept in flight on each stream (default 1)
          --client             go through ParamDbClient instead of prebuilt raw request bodies; on a cluster it sends
                               each node its own keys (see --routing)
          --cluster            the same as --client --routing auto: the smart client against a cluster at --url
          --routing R          with --client: auto (slice by the ring, the default) or off (send everything to
                               --url, which forwards: to measure what forwarding costs)
          --shards URL,URL,…   independent nodes, no cluster: every request is cut by hand into one contiguous key
                               range per node, sent at once (implies --client; what any N-node layout costs on
                               this machine, the floor under --cluster)
          --node-pids P,P,…    node processes to read CPU time from (/proc/PID/stat): adds node CPU s/GB per phase
          --json FILE          also write the results as JSON
          --help               this text
        """;

    public Uri Url { get; init; } = new("http://127.0.0.1:7420");
    public IReadOnlyList<string> Workloads { get; init; } = ["dense", "sparse", "small"];
    public bool DenseRange { get; init; } = true;
    public bool DenseExplicit { get; init; } = true;
    public int Connections { get; init; } = 1;
    public int? Iterations { get; init; }
    public TimeSpan? Duration { get; init; }
    public int? Warmup { get; init; }
    public int Repeat { get; init; } = 1;
    public bool Lz4 { get; init; }
    public double Zeros { get; init; }
    public bool Http2 { get; init; }
    public bool ViaClient { get; init; }
    public bool Routing { get; init; } = true;
    public bool Stream { get; init; }
    public int InFlight { get; init; } = 1;
    public int SparseKeys { get; init; } = 10_000;
    public string? JsonPath { get; init; }
    public IReadOnlyList<Uri> Shards { get; init; } = [];
    public IReadOnlyList<int> NodePids { get; init; } = [];
    public bool Help { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            o = arg switch
            {
                "--url" => o with { Url = new Uri(Next()) },
                "--workload" => o with { Workloads = ParseWorkloads(Next()) },
                "--keys" => Next() switch
                {
                    "range" => o with { DenseRange = true, DenseExplicit = false },
                    "explicit" => o with { DenseRange = false, DenseExplicit = true },
                    "both" => o with { DenseRange = true, DenseExplicit = true },
                    var k => throw new ArgumentException($"--keys takes range, explicit or both, not {k}."),
                },
                "--connections" => o with { Connections = Positive(arg, Next()) },
                "--iterations" => o with { Iterations = Positive(arg, Next()) },
                "--duration" => o with { Duration = TimeSpan.FromSeconds(double.Parse(Next().TrimEnd('s'), CultureInfo.InvariantCulture)) },
                "--warmup" => o with { Warmup = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--repeat" => o with { Repeat = Positive(arg, Next()) },
                "--lz4" => o with { Lz4 = true },
                "--zeros" => o with { Zeros = Math.Clamp(double.Parse(Next(), CultureInfo.InvariantCulture), 0, 1) },
                "--http2" => o with { Http2 = true },
                "--stream" => o with { Stream = true, Http2 = true },
                "--in-flight" => o with { InFlight = Positive(arg, Next()) },
                "--sparse-keys" => o with { SparseKeys = Positive(arg, Next()) },
                "--client" => o with { ViaClient = true },
                "--cluster" => o with { ViaClient = true, Routing = true },
                "--routing" => Next() switch
                {
                    "auto" => o with { Routing = true },
                    "off" => o with { Routing = false },
                    var r => throw new ArgumentException($"--routing takes auto or off, not {r}."),
                },
                "--shards" => o.WithShards([.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(u => new Uri(u))]),
                "--json" => o with { JsonPath = Next() },
                "--node-pids" => o with { NodePids = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))] },
                "--help" or "-h" => o with { Help = true },
                _ => throw new ArgumentException($"Unknown option {arg}; see --help."),
            };
        }
        if (o.Shards.Count > 0 && o.Stream) throw new ArgumentException("--shards goes through ParamDbClient, not --stream.");
        if (o.Stream && o.Lz4) throw new ArgumentException("--lz4 is not available with --stream yet.");
        if (o.InFlight > 1 && !o.Stream) throw new ArgumentException("--in-flight needs --stream: a REST connection has one request in flight.");
        return o;
    }

    private BenchOptions WithShards(Uri[] urls) => urls.Length > 0
        ? this with { Shards = urls, Url = urls[0], ViaClient = true, Routing = false }
        : throw new ArgumentException("--shards needs at least one URL.");

    private static string[] ParseWorkloads(string value)
    {
        if (value == "all") return ["dense", "sparse", "small"];
        string[] names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (string name in names)
        {
            if (name is not ("dense" or "sparse" or "small"))
                throw new ArgumentException($"--workload takes dense, sparse, small or all, not {name}.");
        }
        return names;
    }

    private static int Positive(string option, string value)
    {
        int n = int.Parse(value, CultureInfo.InvariantCulture);
        return n > 0 ? n : throw new ArgumentException($"{option} must be at least 1.");
    }
}
