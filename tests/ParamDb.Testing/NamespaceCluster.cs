using System.Diagnostics;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Testing;

/// <summary>
/// A cluster of real <c>paramdb</c> processes, node i (from 1) in host i of a <see cref="NetworkLab"/>, so a test
/// can cut links between nodes while it still talks to every one of them. Node 1 founds the cluster and the others
/// join through it; all share a cluster secret (their addresses are not loopback). Each node's output goes to
/// <c>node{i}.log</c> in the cluster's folder, which stays behind when a test fails (its path is in the message).
/// </summary>
public sealed class NamespaceCluster : IAsyncDisposable
{
    private const int Port = 7420;
    private readonly Process?[] _nodes;
    private bool _failed;

    private NamespaceCluster(NetworkLab lab, int size)
    {
        Lab = lab;
        _nodes = new Process?[size];
        Folder = RunningServer.NewTempDirectory();
        Directory.CreateDirectory(Folder);
    }

    /// <summary>The network the nodes live in.</summary>
    public NetworkLab Lab { get; }

    /// <summary>Data folders (<c>n{i}/</c>) and logs (<c>node{i}.log</c>).</summary>
    public string Folder { get; }

    /// <summary>Starts <paramref name="size"/> nodes, each waited for until it answers; <paramref name="extraArgs"/> go to every node.</summary>
    public static async Task<NamespaceCluster> StartAsync(int size, params string[] extraArgs)
    {
        var cluster = new NamespaceCluster(NetworkLab.Create(size), size);
        try
        {
            for (int i = 1; i <= size; i++)
                await cluster.StartNodeAsync(i, [.. extraArgs, .. i == 1 ? ["--cluster-init"] : (string[])["--join", $"{cluster.Lab.Address(1)}:{Port}"]]);
            return cluster;
        }
        catch
        {
            cluster._failed = true;
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The HTTP/1.1 address of node <paramref name="i"/>.</summary>
    public Uri Http(int i) => new($"http://{Lab.Address(i)}:{Port}/");

    /// <summary>The cluster secret every node shares (peer routes need it).</summary>
    public const string Secret = "lab-secret";

    /// <summary>A client of node <paramref name="i"/> with a 10 s timeout (a cut link must not hang a test).</summary>
    public HttpClient Client(int i) => new() { BaseAddress = Http(i), Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>Node <paramref name="i"/>'s view of the cluster.</summary>
    public async Task<ClusterView> ViewAsync(int i)
    {
        using HttpClient http = Client(i);
        return (await http.GetFromJsonAsync("v1/cluster", ProtocolJson.Default.ClusterView))!;
    }

    /// <summary>Starts node <paramref name="i"/> on its data folder, inside its host, and waits (at most 120 s) until it answers.</summary>
    public async Task StartNodeAsync(int i, params string[] args)
    {
        string address = Lab.Address(i);
        ProcessStartInfo command = NodeProcess.Command(
        [
            "--data", Path.Combine(Folder, $"n{i}"), "--memory", "64m", "--node-id", $"n{i}", "--cluster-secret", Secret,
            "--listen", $"{address}:{Port}", "--listen-h2", $"{address}:{Port + 1}", "--raft", $"{address}:{Port + 2}", .. args,
        ]);
        var p = Process.Start(Lab.Inside(i, command))!;
        _nodes[i - 1] = p;
        var log = new FileStream(Path.Combine(Folder, $"node{i}.log"), FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        _ = Task.WhenAll(p.StandardOutput.BaseStream.CopyToAsync(log), p.StandardError.BaseStream.CopyToAsync(log)).ContinueWith(_ => log.Dispose(), TaskScheduler.Default);
        using HttpClient http = Client(i);
        long deadline = Environment.TickCount64 + 120_000;
        while (Environment.TickCount64 < deadline)
        {
            if (p.HasExited) throw new InvalidOperationException($"Node n{i} exited ({p.ExitCode}) before it answered; see {Folder}/node{i}.log.");
            try
            {
                using var reply = await http.GetAsync("v1/health");
                if (reply.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Not answering yet.
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"Node n{i} did not answer within 120 s; see {Folder}/node{i}.log.");
    }

    /// <summary>SIGKILL to node <paramref name="i"/>; returns once it is gone.</summary>
    public async Task KillNodeAsync(int i)
    {
        if (_nodes[i - 1] is not { } p) return;
        _nodes[i - 1] = null;
        if (!p.HasExited) p.Kill(entireProcessTree: true);
        await p.WaitForExitAsync();
        p.Dispose();
    }

    /// <summary>Keeps the folder (logs and data) for a look after a failed test; call before the assertion that failed.</summary>
    public void KeepFolder() => _failed = true;

    /// <summary>Kills every node, removes the network and, unless <see cref="KeepFolder"/> was called, the folder.</summary>
    public async ValueTask DisposeAsync()
    {
        for (int i = 1; i <= _nodes.Length; i++) await KillNodeAsync(i);
        Lab.Dispose();
        if (!_failed && Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}
