using ParamDb.Client;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Routing;

/// <summary>
/// One ordered peer link per other node: a stream (docs/streaming.md) on its own HTTP/2 connection to the peer's
/// h2 address, opened on first use and kept. A router sends each peer its slice of a request over it, with the
/// ring epoch it sliced by, so the peer serves it from its own store or answers 421.
/// </summary>
public sealed class PeerLinks(ClusterMember node) : IAsyncDisposable
{
    /// <summary>Longest a clock wait may last on a peer; the caller's own deadline is enforced here (docs/consistency.md).</summary>
    private static readonly TimeSpan MaxPeerWait = Storage.DataErrors.MaxWaitTimeout;

    private readonly Lock _sync = new();
    private readonly Dictionary<string, Task<ParamDbStream>> _links = new(StringComparer.Ordinal);

    /// <summary>The link to the node of <paramref name="nodeIndex"/> in <paramref name="ring"/>, opening it if need be.</summary>
    public Task<ParamDbStream> GetAsync(ClusterRing ring, int nodeIndex)
    {
        string id = ring.Nodes[nodeIndex];
        lock (_sync)
        {
            string? h2 = node.Manager.State.Nodes.TryGetValue(id, out var info) ? info.H2 : null;
            if (h2 is null) return Task.FromException<ParamDbStream>(new InvalidOperationException($"Node '{id}' is not in the cluster's state."));
            // Not even tried: the leader heard nothing from it for --down-after, and its lease has lapsed.
            if (info!.State == NodeState.Down) return Task.FromException<ParamDbStream>(new InvalidOperationException($"Node '{id}' is down (the leader has not heard from it); its ranges are unavailable until it returns."));
            if (_links.TryGetValue(id, out Task<ParamDbStream>? link) && !link.IsFaulted && !link.IsCanceled) return link;
            link = ParamDbStream.ConnectAsync(new Uri($"http://{h2}"), new ParamDbStreamOptions
            {
                ClockWaitTimeout = MaxPeerWait,
                // A peer cut off drops the connection's packets: opening a link to it waited the stream's default
                // 10 s before the router could answer 503, and a client retry went to the node that took its arcs
                // (10.2 s to the first acknowledgement behind an nftables DROP). Twice the time the leader takes
                // to declare a silent node down is ample for a live peer, even a busy one.
                ConnectTimeout = 2 * node.Options.DownAfter,
                // One replay on a fresh connection when a link breaks under a request: a stamped push replays
                // exactly once (the peer's clocks skip what it already applied); more is the caller's to decide.
                MaxRetries = 1,
                Headers = node.Options.Secret is { } secret ? new Dictionary<string, string> { [PeerHttp.SecretHeader] = secret, [PeerHttp.PeerHeader] = node.Identity.NodeId } : new Dictionary<string, string> { [PeerHttp.PeerHeader] = node.Identity.NodeId },
            });
            _links[id] = link;
            return link;
        }
    }

    /// <summary>Drops the link to a node after it failed, so the next request opens a new one.</summary>
    public void Forget(ClusterRing ring, int nodeIndex, Task<ParamDbStream> failed)
    {
        string id = ring.Nodes[nodeIndex];
        lock (_sync)
        {
            if (_links.TryGetValue(id, out Task<ParamDbStream>? link) && link == failed) _links.Remove(id);
        }
        if (failed.IsCompletedSuccessfully) _ = failed.Result.DisposeAsync().AsTask();
    }

    /// <summary>Closes every link.</summary>
    public async ValueTask DisposeAsync()
    {
        Task<ParamDbStream>[] links;
        lock (_sync)
        {
            links = [.. _links.Values];
            _links.Clear();
        }
        foreach (Task<ParamDbStream> link in links)
        {
            if (link.IsCompletedSuccessfully) await link.Result.DisposeAsync().ConfigureAwait(false);
        }
    }
}
