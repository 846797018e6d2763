using System.Net;
using ParamDb.Cluster.Metadata;

namespace ParamDb.Server.Options;

/// <summary>The cluster options, checked (<see cref="ClusterSection"/>); a node started with none of them runs alone.</summary>
public sealed record ClusterSettings
{
    /// <summary>This node's id.</summary>
    public required string NodeId { get; init; }

    /// <summary>Whether the id was given (<c>--node-id</c>) rather than taken from the host name.</summary>
    public bool NodeIdGiven { get; init; }

    /// <summary>The Raft endpoint.</summary>
    public required IPEndPoint Raft { get; init; }

    /// <summary>Found a cluster.</summary>
    public bool Init { get; init; }

    /// <summary>Join through this member's HTTP address.</summary>
    public string? Join { get; init; }

    /// <summary>R.</summary>
    public int Replicas { get; init; } = 2;

    /// <summary>V.</summary>
    public int VirtualNodes { get; init; } = ParamDb.Protocol.Ring.DefaultVirtualNodes;

    /// <summary>The peers' shared secret.</summary>
    public string? Secret { get; init; }

    /// <summary>How long a node may be silent before the leader declares it down.</summary>
    public TimeSpan DownAfter { get; init; } = ParamDb.Cluster.ClusterOptions.DefaultDownAfter;

    /// <summary>How fast a primary sends a returning node its arcs, bytes per second; 0 for no limit.</summary>
    public long ResyncBytesPerSecond { get; init; } = ParamDb.Cluster.ClusterOptions.DefaultResyncBytesPerSecond;

    /// <summary>Checks <paramref name="o"/>; throws <see cref="OptionsException"/> naming the bad option.</summary>
    public static ClusterSettings From(ClusterSection o)
    {
        string nodeId = string.IsNullOrWhiteSpace(o.NodeId) ? Dns.GetHostName() : o.NodeId.Trim();
        // The id matters only to a node that founds or joins a cluster (a restart reads it from its data folder):
        // a single node whose host name is not a valid id must still start.
        if (!NodeInfo.IsValidId(nodeId) && string.IsNullOrWhiteSpace(o.NodeId) && !o.Init && o.Join is null) nodeId = "paramdb";
        if (!NodeInfo.IsValidId(nodeId))
            throw new OptionsException(string.IsNullOrWhiteSpace(o.NodeId)
                ? $"--node-id: the host name '{nodeId}' is not a node id ([A-Za-z0-9_.-], 1 to 64 characters); give one with --node-id."
                : $"--node-id: '{nodeId}' is not a node id: use 1 to 64 characters of A-Z a-z 0-9 _ . -");
        if (!IPEndPoint.TryParse(o.Raft, out IPEndPoint? raft) || raft.Port == 0)
            throw new OptionsException($"--raft: '{o.Raft}' is not an IP address and port (e.g. 127.0.0.1:7422).");
        if (o.Join is { } join && !NodeInfo.IsValidAddress(join))
            throw new OptionsException($"--join: '{join}' is not HOST:PORT, the HTTP address of a member (e.g. 127.0.0.1:7420).");
        if (o.Init && o.Join is not null) throw new OptionsException("--cluster-init and --join exclude each other: found a cluster on the first node, join it from the others.");
        if (o.Replicas is < 1 or > 7) throw new OptionsException($"--replicas must be 1 to 7; got {o.Replicas}.");
        if (o.Vnodes is < 1 or > 4096) throw new OptionsException($"--vnodes must be 1 to 4096; got {o.Vnodes}.");
        if (o.DownAfter is < 300 or > 60_000) throw new OptionsException($"--down-after must be 300 to 60000 ms; got {o.DownAfter}.");
        if (o.ResyncRate is < 0 or > 100_000) throw new OptionsException($"--resync-rate must be 0 (no limit) to 100000 MiB/s; got {o.ResyncRate}.");
        return new ClusterSettings
        {
            NodeId = nodeId,
            NodeIdGiven = !string.IsNullOrWhiteSpace(o.NodeId),
            Raft = raft,
            Init = o.Init,
            Join = o.Join,
            Replicas = o.Replicas,
            VirtualNodes = o.Vnodes,
            Secret = string.IsNullOrEmpty(o.Secret) ? null : o.Secret,
            DownAfter = TimeSpan.FromMilliseconds(o.DownAfter),
            ResyncBytesPerSecond = (long)o.ResyncRate << 20,
        };
    }
}
