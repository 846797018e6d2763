using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;

namespace ParamDb.Client.Tests;

/// <summary>
/// Three real nodes in this process on 127.0.0.1–3 (<see cref="LocalCluster"/>) and one single node to compare with,
/// shared by the tests of a class; each test uses its own table names.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public LocalCluster Cluster { get; private set; } = null!;

    public RunningServer Single { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Cluster = await StartClusterAsync();
        Single = await RunningServer.StartAsync();
    }

    /// <summary>
    /// Three nodes, started again (on new ports) when a start fails. On a busy two-core machine a start fails now and
    /// then: a node not settling within its start timeout, or a join that finds no leader for as long.
    /// </summary>
    public static async Task<LocalCluster> StartClusterAsync()
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                // Three nodes in this one process share its thread pool: a million-row push with its replication
                // stalled heartbeats past the default 1 s and a node was declared down mid-test. 5 s keeps these
                // routing tests about routing; LivenessTests and PartitionTests test detection on real processes.
                return await LocalCluster.StartAsync(3, "--down-after", "5000");
            }
            catch (Exception) when (attempt < 3)
            {
                // LocalCluster.StartAsync has stopped the nodes it started; try again.
            }
        }
    }

    /// <summary>
    /// A metadata call (create a table, register a worker) retried while the cluster answers 503 no_leader: it goes
    /// through the server manager, which has no leader during an election, and a starved node can start one.
    /// </summary>
    public static async Task<T> WithLeaderAsync<T>(Func<Task<T>> call)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call();
            }
            catch (ParamDbException e) when (e.Code == ProblemCodes.NoLeader && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(200);
            }
        }
    }

    public async Task DisposeAsync()
    {
        await Single.DisposeAsync();
        await Cluster.DisposeAsync();
    }

    /// <summary>The h2c address of node <paramref name="i"/> (from 1).</summary>
    public Uri H2(int i) => new($"http://127.0.0.{i}:{Cluster.BasePort + 1}/");

    /// <summary>The ring as node 1 sees it.</summary>
    public async Task<(ClusterView View, ClusterRing Ring)> RingAsync()
    {
        ClusterView view = await Cluster.ViewAsync(1);
        return (view, ClusterRing.FromView(view));
    }

    /// <summary>Rows node <paramref name="i"/> keeps of <paramref name="table"/> itself (<c>?scope=node</c>, not summed over the cluster).</summary>
    public async Task<long> LocalRowsAsync(int i, string table)
    {
        using HttpClient client = Cluster.Client(i);
        return (await client.GetFromJsonAsync($"v1/tables/{table}?scope=node", ProtocolJson.Default.TableInfo))!.Rows;
    }

    /// <summary>
    /// Waits until every node knows <paramref name="table"/>: a table is created through the server manager and reaches
    /// the other nodes when they apply its log entry.
    /// </summary>
    public async Task VisibleEverywhereAsync(string table)
    {
        for (int i = 1; i <= Cluster.Size; i++)
        {
            using HttpClient client = Cluster.Client(i);
            await Eventually.TrueAsync(async () =>
            {
                using HttpResponseMessage reply = await client.GetAsync($"v1/tables/{table}");
                return reply.StatusCode == HttpStatusCode.OK;
            }, $"table {table} on node n{i}");
        }
    }

    /// <summary>
    /// A forged view of the same nodes: each node lists the next node's tokens, so almost every key's primary is another
    /// node than the real ring says. Nodes refuse what it slices with 421.
    /// </summary>
    public static ClusterView Rotated(ClusterView view)
    {
        var nodes = new List<ClusterNode>(view.Nodes.Count);
        for (int i = 0; i < view.Nodes.Count; i++)
            nodes.Add(view.Nodes[i] with { Tokens = view.Nodes[(i + 1) % view.Nodes.Count].Tokens });
        return view with { Nodes = nodes };
    }

    /// <summary>The view as it was before node <paramref name="id"/> joined: a client that fetched it then holds it now.</summary>
    public static ClusterView Without(ClusterView view, string id)
    {
        var nodes = new List<ClusterNode>();
        foreach (ClusterNode node in view.Nodes) if (node.Id != id) nodes.Add(node);
        return view with { Epoch = view.Epoch - 1, Nodes = nodes };
    }
}

/// <summary>
/// Records every request a client sends: to which node, with which ring epoch and, for push and pull, which keys — so a
/// test can check that each request went to the primary of every key it carries.
/// </summary>
public sealed class RecordingHandler() : DelegatingHandler(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None, UseCookies = false })
{
    /// <summary>One request; <see cref="Keys"/> lists a range's keys too.</summary>
    public sealed record Sent(string Authority, string Path, ulong? Epoch, bool Range, ulong[] Keys);

    public ConcurrentQueue<Sent> Requests { get; } = new();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        string path = request.RequestUri!.AbsolutePath;
        ulong? epoch = request.Headers.TryGetValues(ParamDbHeaders.RingEpoch, out var values)
            ? ulong.Parse(values.Single(), CultureInfo.InvariantCulture)
            : null;
        ulong[] keys = [];
        bool range = false;
        if (request.Content is not null && (path.EndsWith("/push", StringComparison.Ordinal) || path.EndsWith("/pull", StringComparison.Ordinal)))
        {
            byte[] body = await request.Content.ReadAsByteArrayAsync(cancellationToken);
            Assert.True(KvBlock.TryParse(body, KvExpect.Any, int.MaxValue, out KvBlock kv, out ProtocolError error), error.Detail);
            range = kv.IsRange;
            keys = new ulong[kv.Count];
            if (range) for (int i = 0; i < keys.Length; i++) keys[i] = kv.First + (ulong)i;
            else kv.Keys(body).CopyTo(keys);
        }
        Requests.Enqueue(new Sent(request.RequestUri.Authority, path, epoch, range, keys));
        return await base.SendAsync(request, cancellationToken);
    }
}
