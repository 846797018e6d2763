using System.Net;
using DotNext.Net.Cluster;
using DotNext.Net.Cluster.Consensus.Raft;
using Microsoft.Extensions.Logging;

namespace ParamDb.Cluster;

// Who leads, by node id and HTTP address. Followers learn them from the leader's member metadata (DotNext's
// TCP transport has no RedirectToLeader): fetched once per leader change, in the background, with the node
// table (a node whose raft address is the leader's endpoint) as the fallback while it is on its way.
public sealed partial class ServerManager
{
    private static readonly TimeSpan MetadataFetchTimeout = TimeSpan.FromSeconds(1);

    private volatile LeaderInfo? _leader;
    private long _ledSince;   // Stopwatch timestamp of the last change that made this member the leader; 0 while it does not lead

    /// <summary>
    /// When this member last became the Raft leader (a <see cref="System.Diagnostics.Stopwatch"/> timestamp), or 0
    /// when another member or none leads. Every node lease a previous leader granted was granted before then: it held
    /// Raft's leader lease to grant, and that lease ends before a majority lets any member be elected.
    /// </summary>
    public long LedSince => IsLeader ? Volatile.Read(ref _ledSince) : 0;

    /// <summary>The leader's node id, or null when no leader is known (or not yet its id).</summary>
    public string? LeaderId => CurrentLeader()?.Id;

    /// <summary>The leader's HTTP address (<c>host:port</c>), or null when no leader is known (or not yet its address).</summary>
    public string? LeaderHttp => CurrentLeader()?.Http;

    /// <summary>The leader's Raft endpoint, or null when no leader is known.</summary>
    public EndPoint? LeaderRaftEndPoint => Volatile.Read(ref _phase) == Running ? _cluster?.Leader?.EndPoint : null;

    /// <summary>Waits until some member leads, up to <paramref name="timeout"/>; false when none did.</summary>
    public async Task<bool> WaitForLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var cluster = RequireRunning();
        try
        {
            await cluster.WaitForLeaderAsync(timeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private sealed record LeaderInfo(EndPoint EndPoint, string? Id, string? Http);

    private void OnLeaderChanged(RaftCluster<RaftClusterMember> cluster, RaftClusterMember? leader)
    {
        Volatile.Write(ref _ledSince, leader is { IsRemote: false } ? System.Diagnostics.Stopwatch.GetTimestamp() : 0);
        _logger.LeaderChanged(_options.NodeId, leader?.EndPoint.ToString() ?? "none");
        if (leader is null)
            _leader = null;
        else if (!leader.IsRemote)
            _leader = new LeaderInfo(leader.EndPoint, _options.NodeId, _options.HttpEndPoint);
        else
        {
            _leader = new LeaderInfo(leader.EndPoint, null, null);
            _ = FetchLeaderInfoAsync(leader, _lifetime.Token);
        }
    }

    /// <summary>The current leader with what is known of it, or null.</summary>
    private LeaderInfo? CurrentLeader()
    {
        if (Volatile.Read(ref _phase) != Running || _cluster is not { } cluster || cluster.Leader is not { } leader) return null;
        if (!leader.IsRemote && !HoldsLeadership(cluster)) return null; // stepped down, or not yet serving
        var info = _leader is { } cached && EndPointEquals(cached.EndPoint, leader.EndPoint)
            ? cached
            : new LeaderInfo(leader.EndPoint, null, null);
        if (info.Id is not null && info.Http is not null) return info;
        // Fallback: the node table names the node whose raft address is the leader's endpoint.
        var node = State.FindByRaftAddress(leader.EndPoint.ToString() ?? "");
        return node is null ? info : info with { Id = info.Id ?? node.Id, Http = info.Http ?? node.Http };
    }

    private async Task<LeaderInfo?> FetchLeaderInfoAsync(RaftClusterMember leader, CancellationToken cancellationToken)
    {
        try
        {
            var metadata = await ((IClusterMember)leader).GetMetadataAsync(refresh: false, cancellationToken).ConfigureAwait(false);
            var info = new LeaderInfo(leader.EndPoint, metadata.GetValueOrDefault(MetadataIdKey), metadata.GetValueOrDefault(MetadataHttpKey));
            if (_cluster?.Leader is { } current && EndPointEquals(current.EndPoint, leader.EndPoint)) _leader = info;
            return info;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _logger.LeaderMetadataFailed(leader.EndPoint.ToString() ?? "?", e);
            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>The exception for a request that needs the leader: whom to ask instead, waiting briefly for the leader's metadata.</summary>
    private async Task<Exception> NotLeaderErrorAsync(RaftCluster cluster, Exception? inner, CancellationToken cancellationToken)
    {
        if (cluster.Leader is not { IsRemote: true } leader) return new NoLeaderException(inner);
        var info = CurrentLeader();
        if (info?.Http is null)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _lifetime.Token);
            timeout.CancelAfter(MetadataFetchTimeout);
            var fetched = await FetchLeaderInfoAsync(leader, timeout.Token).ConfigureAwait(false);
            info = fetched is null ? info : CurrentLeader() ?? fetched;
        }
        return new NotLeaderException(info?.Id, info?.Http, inner);
    }

    private static bool EndPointEquals(EndPoint a, EndPoint b) => a.Equals(b);
}
