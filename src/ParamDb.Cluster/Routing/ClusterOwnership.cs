using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;

namespace ParamDb.Cluster.Routing;

/// <summary>
/// The ranges a cluster node owns: the arcs of the current ring that end at its tokens (<see cref="Ranges"/>). Its
/// store keeps a vector clock for every arc of the ring and serves these (<see cref="StoreRanges"/>).
/// </summary>
public sealed class ClusterOwnership : IRangeOwnership
{
    private readonly ClusterMember _member;

    /// <summary>Follows <paramref name="member"/>'s ring.</summary>
    public ClusterOwnership(ClusterMember member)
    {
        _member = member;
        Ranges = new Ring(member.Identity.Tokens);
        member.RingChanged += _ => Changed?.Invoke();
    }

    /// <inheritdoc />
    public ulong Epoch => _member.Ring?.Epoch ?? 0;

    /// <inheritdoc />
    public Ring Ranges { get; }

    /// <inheritdoc />
    public bool Owns(ulong tableHash, ulong key) =>
        _member.Ring is not { } ring || ring.PrimaryOf(tableHash, key) == ring.NodeIndex(_member.Identity.NodeId);

    /// <inheritdoc />
    public event Action? Changed;
}
