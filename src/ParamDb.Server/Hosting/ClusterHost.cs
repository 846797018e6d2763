using System.Net;
using ParamDb.Cluster;
using ParamDb.Cluster.Membership;
using ParamDb.Server.Options;

namespace ParamDb.Server.Hosting;

/// <summary>
/// Takes the node's place in its cluster before the store opens (the store's ranges are the node's ring tokens):
/// founds, joins or rejoins, or does nothing for a node that belongs to no cluster. Started before
/// <see cref="StoreHost"/> and stopped after it.
/// </summary>
public sealed class ClusterHost(NodeSettings settings, ILoggerFactory loggers) : IHostedService, IAsyncDisposable
{
    private ClusterMember? _member;

    /// <summary>This node's membership; null on a single node (and before start).</summary>
    public ClusterMember? Member => _member;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (settings.Cluster is not { } cluster) return;
        bool member = cluster.Init || cluster.Join is not null || File.Exists(Path.Combine(settings.DataDirectory, NodeIdentity.FileName));
        if (!member) return;   // a single node: nothing here, no cost
        Directory.CreateDirectory(settings.DataDirectory);
        var options = new ClusterOptions
        {
            NodeId = cluster.NodeId,
            RaftEndPoint = cluster.Raft,
            Http = Advertised(settings.Http1, "--listen"),
            H2 = Advertised(settings.Http2, "--listen-h2"),
            DataDirectory = settings.DataDirectory,
            Init = cluster.Init,
            Join = cluster.Join,
            Replicas = cluster.Replicas,
            VirtualNodes = cluster.VirtualNodes,
            Secret = cluster.Secret,
            DownAfter = cluster.DownAfter,
            ResyncBytesPerSecond = cluster.ResyncBytesPerSecond,
        };
        if (cluster.Secret is null && !(IPAddress.IsLoopback(cluster.Raft.Address) && IsLoopback(settings.Http1) && IsLoopback(settings.Http2)))
            throw new ClusterStartException("--cluster-secret is required when the node listens on an address other than loopback: peers prove it to each other on every link.");
        _member = await ClusterMember.StartAsync(options, loggers, cancellationToken);
        if (cluster.NodeIdGiven && _member is not null && _member.Identity.NodeId != cluster.NodeId)
            throw new ClusterStartException($"--node-id {cluster.NodeId}: {settings.DataDirectory} belongs to node '{_member.Identity.NodeId}'. Drop --node-id, or give this node its own --data.");
    }

    private static bool IsLoopback(ListenAddress address) => address.Address is null || IPAddress.IsLoopback(address.Address);

    /// <summary>Where peers reach a listener: its own address, which must be a specific one with a fixed port.</summary>
    private static string Advertised(ListenAddress address, string option)
    {
        if (address.Port == 0) throw new ClusterStartException($"{option}: a cluster node needs a fixed port (peers are told it before the node listens); got port 0.");
        IPAddress ip = address.Address ?? IPAddress.Loopback;
        if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            throw new ClusterStartException($"{option}: {ip} cannot be given to peers as this node's address; listen on the node's own address.");
        return new IPEndPoint(ip, address.Port).ToString();
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _member, null) is { } member) await member.DisposeAsync();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _member, null) is { } member) await member.DisposeAsync();
    }
}
