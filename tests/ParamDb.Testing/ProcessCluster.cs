using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Testing;

/// <summary>
/// Real <c>paramdb</c> processes as cluster nodes on loopback: node i (from 1) listens on 127.0.0.i, all on the same
/// three ports (HTTP/1.1, h2c, Raft), with id <c>n{i}</c>, its data in <c>n{i}/</c> and its output in
/// <c>n{i}.log</c> of one folder, deleted on dispose. For tests that kill and restart nodes; the caller passes
/// <c>--cluster-init</c> or <c>--join</c> (<see cref="Join"/>) itself.
/// </summary>
public sealed class ProcessCluster(int size) : IDisposable
{
    private readonly NodeProcess?[] _nodes = new NodeProcess?[size];

    /// <summary>The folder of the nodes' data and logs.</summary>
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "paramdb-cluster-" + Guid.NewGuid().ToString("N"));

    /// <summary>The HTTP/1.1 port of every node; h2c is one above, Raft two above.</summary>
    public int Port { get; } = LoopbackPorts.Triple(size);

    /// <summary>The option that joins a node through node 1.</summary>
    public string[] Join => ["--join", $"127.0.0.1:{Port}"];

    /// <summary>Node <paramref name="i"/>'s process; null while it is not started.</summary>
    public NodeProcess? this[int i] => _nodes[i - 1];

    /// <summary>(Re)starts node <paramref name="i"/> with <paramref name="args"/>, and <paramref name="environment"/> added to its environment.</summary>
    public async Task StartAsync(int i, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        _nodes[i - 1]?.Dispose();
        _nodes[i - 1] = await NodeProcess.StartWithEnvironmentAsync(Path.Combine(Root, $"n{i}"), Path.Combine(Root, $"n{i}.log"), environment,
        [
            "--listen", $"127.0.0.{i}:{Port}", "--listen-h2", $"127.0.0.{i}:{Port + 1}", "--raft", $"127.0.0.{i}:{Port + 2}",
            "--node-id", $"n{i}", .. args,
        ]);
    }

    /// <summary>An HTTP/1.1 client of node <paramref name="i"/>.</summary>
    public HttpClient Client(int i) => new() { BaseAddress = new Uri($"http://127.0.0.{i}:{Port}/") };

    /// <summary>Node <paramref name="i"/>'s <c>GET /v1/cluster</c>; null when it does not answer within 5 s.</summary>
    public async Task<ClusterView?> ViewAsync(int i)
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

    /// <summary>
    /// Polls the views of <paramref name="observers"/> until one satisfies <paramref name="done"/>; after
    /// <paramref name="within"/>, throws <see cref="TimeoutException"/> naming <paramref name="what"/>, the last view
    /// and the nodes' log tails. Returns the view that satisfied it.
    /// </summary>
    public async Task<ClusterView> WaitForViewAsync(IReadOnlyList<int> observers, string what, Func<ClusterView, bool> done, TimeSpan within)
    {
        long deadline = Environment.TickCount64 + (long)within.TotalMilliseconds;
        ClusterView? last = null;
        while (Environment.TickCount64 < deadline)
        {
            foreach (int i in observers)
            {
                if (await ViewAsync(i) is not { } view) continue;
                last = view;
                if (done(view)) return view;
            }
            await Task.Delay(50);
        }
        string seen = last is null ? "none" : $"epoch {last.Epoch}, {string.Join(", ", last.Nodes.Select(n => $"{n.Id} {n.State}"))}, under-replicated {last.UnderReplicated}, unavailable {last.Unavailable}";
        throw new TimeoutException($"Not within {within.TotalSeconds} s: {what}. Last view: {seen}\n{string.Join("\n", LogTails(40))}");
    }

    /// <summary>The last <paramref name="lines"/> lines of every node's log, for a failed test's output.</summary>
    public IEnumerable<string> LogTails(int lines = 60)
    {
        if (!Directory.Exists(Root)) yield break;
        foreach (string log in Directory.GetFiles(Root, "*.log"))
            yield return $"--- {Path.GetFileName(log)}{Environment.NewLine}{string.Join(Environment.NewLine, File.ReadLines(log).TakeLast(lines))}";
    }

    /// <summary>Stops every node and deletes the folder.</summary>
    public void Dispose()
    {
        foreach (NodeProcess? node in _nodes) node?.Dispose();
        try
        {
            if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A node's files still closing: the temporary folder stays behind.
        }
    }
}
