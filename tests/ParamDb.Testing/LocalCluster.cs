using System.Text.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Testing;

/// <summary>
/// N real nodes in this process forming a cluster (docs/cluster.md): node i (from 1) listens on 127.0.0.i, all on
/// the same three ports (HTTP/1.1, h2c, Raft), with id <c>n{i}</c>. Node 1 founds the cluster, the others join
/// through node 1. Data folders are temporary and deleted on dispose.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly RunningServer?[] _nodes;
    private readonly string[] _directories;
    private readonly string[] _extraArgs;

    private LocalCluster(int size, int basePort, string[] extraArgs)
    {
        _nodes = new RunningServer?[size];
        _directories = new string[size];
        for (int i = 0; i < size; i++) _directories[i] = RunningServer.NewTempDirectory();
        BasePort = basePort;
        _extraArgs = extraArgs;
    }

    /// <summary>The HTTP/1.1 port of every node; h2c is one above, Raft two above.</summary>
    public int BasePort { get; }

    /// <summary>Nodes in the cluster.</summary>
    public int Size => _nodes.Length;

    /// <summary>Node <paramref name="i"/> (from 1); null while it is stopped.</summary>
    public RunningServer this[int i] => _nodes[i - 1] ?? throw new InvalidOperationException($"Node n{i} is stopped.");

    /// <summary>The HTTP/1.1 address of node <paramref name="i"/>.</summary>
    public Uri Http(int i) => new($"http://127.0.0.{i}:{BasePort}/");

    /// <summary>Starts <paramref name="size"/> nodes and waits until every one is up in the ring.</summary>
    public static async Task<LocalCluster> StartAsync(int size = 3, params string[] extraArgs)
    {
        var cluster = new LocalCluster(size, LoopbackPorts.Triple(size), extraArgs);
        try
        {
            for (int i = 1; i <= size; i++) await cluster.StartNodeAsync(i, i == 1 ? ["--cluster-init"] : ["--join", $"127.0.0.1:{cluster.BasePort}"]);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts node <paramref name="i"/> on its data folder with its addresses and <paramref name="args"/>.</summary>
    public async Task StartNodeAsync(int i, params string[] args)
    {
        _nodes[i - 1] = await RunningServer.StartAsync(_directories[i - 1],
        [
            "--listen", $"127.0.0.{i}:{BasePort}", "--listen-h2", $"127.0.0.{i}:{BasePort + 1}", "--raft", $"127.0.0.{i}:{BasePort + 2}",
            "--node-id", $"n{i}", .. _extraArgs, .. args,
        ]);
    }

    /// <summary>Stops node <paramref name="i"/> cleanly (its data folder stays).</summary>
    public async Task StopNodeAsync(int i)
    {
        if (_nodes[i - 1] is { } node)
        {
            _nodes[i - 1] = null;
            await node.DisposeAsync();
        }
    }

    /// <summary>Restarts node <paramref name="i"/> with no cluster flags: it rejoins from its data folder.</summary>
    public Task RestartNodeAsync(int i) => StartNodeAsync(i);

    /// <summary>An HTTP/1.1 client for node <paramref name="i"/>.</summary>
    public HttpClient Client(int i) => new() { BaseAddress = Http(i) };

    /// <summary><c>GET /v1/cluster</c> from node <paramref name="i"/>.</summary>
    public async Task<ClusterView> ViewAsync(int i)
    {
        using HttpClient client = Client(i);
        return JsonSerializer.Deserialize(await client.GetByteArrayAsync("v1/cluster"), ProtocolJson.Default.ClusterView)!;
    }

    /// <summary>Rows of <paramref name="table"/> that node <paramref name="i"/> holds itself (<c>GET /v1/tables/{t}?scope=node</c>).</summary>
    public async Task<long> OwnRowsAsync(int i, string table)
    {
        using HttpClient client = Client(i);
        return JsonSerializer.Deserialize(await client.GetByteArrayAsync($"v1/tables/{table}?scope=node"), ProtocolJson.Default.TableInfo)!.Rows;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        for (int i = _nodes.Length; i >= 1; i--)
        {
            try
            {
                await StopNodeAsync(i);
            }
            catch (Exception)
            {
                // Stopping a node whose peers are gone can fail its shutdown checkpoint; the folder goes anyway.
            }
        }
        foreach (string directory in _directories)
        {
            try
            {
                if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
