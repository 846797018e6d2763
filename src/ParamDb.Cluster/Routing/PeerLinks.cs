using ParamDb.Client;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Routing;

/// <summary>
/// One ordered peer link per other node: a stream (docs/streaming.md) on its own HTTP/2 connection to the peer's
/// h2 address, opened on first use and kept. A router sends each peer its slice of a request over it, with the
/// ring epoch it sliced by, so the peer serves it from its own store or answers 421. When the ring declares a peer
/// down, its link is dropped and the calls still waiting on it give up (<see cref="DownToken"/>).
/// </summary>
public sealed class PeerLinks : IAsyncDisposable
{
    /// <summary>Longest a clock wait may last on a peer; the caller's own deadline is enforced here (docs/consistency.md).</summary>
    private static readonly TimeSpan MaxPeerWait = Storage.DataErrors.MaxWaitTimeout;

    private readonly ClusterMember _node;
    private readonly Lock _sync = new();
    private readonly Dictionary<string, Task<ParamDbStream>> _links = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CancellationTokenSource> _untilDown = new(StringComparer.Ordinal);

    /// <summary>Links from <paramref name="member"/> to the other nodes of its ring, opened as they are needed.</summary>
    public PeerLinks(ClusterMember member)
    {
        _node = member;
        _node.RingChanged += OnRingChanged;
    }

    /// <summary>
    /// A token cancelled when the ring declares node <paramref name="id"/> down. A call on its link waits for that
    /// and no longer: behind a partition the node answers nothing, and a call waited out its own timeout (the
    /// link's opening waited up to twice <c>--down-after</c>) before its client could retry by the new ring.
    /// </summary>
    public CancellationToken DownToken(string id)
    {
        lock (_sync)
        {
            if (!_untilDown.TryGetValue(id, out CancellationTokenSource? source)) _untilDown[id] = source = new CancellationTokenSource();
            return source.Token;
        }
    }

    private void OnRingChanged(ClusterRing ring)
    {
        List<CancellationTokenSource> down = [];
        List<Task<ParamDbStream>> dropped = [];
        lock (_sync)
        {
            // Nodes declared down, and nodes no longer in the ring (removed): their calls give up, their links close.
            List<string> gone = [];
            foreach (string id in _untilDown.Keys) if (ring.NodeIndex(id) < 0) gone.Add(id);
            foreach (string id in _links.Keys) if (ring.NodeIndex(id) < 0) gone.Add(id);
            for (int n = 0; n < ring.NodeCount; n++)
                if (ring.StateOf(n) == NodeState.Down) gone.Add(ring.Nodes[n]);
            foreach (string id in gone)
            {
                if (_untilDown.Remove(id, out CancellationTokenSource? source)) down.Add(source);
                if (_links.Remove(id, out Task<ParamDbStream>? link)) dropped.Add(link);
            }
        }
        // On the Raft applier: the cancellations' continuations run elsewhere, and the links close in the background.
        // The sources are not disposed: a call may still link its token to one (they hold no timer).
        foreach (CancellationTokenSource source in down) _ = Task.Run(source.Cancel);
        foreach (Task<ParamDbStream> link in dropped)
            if (link.IsCompletedSuccessfully) _ = link.Result.DisposeAsync().AsTask();
    }

    /// <summary>The link to the node of <paramref name="nodeIndex"/> in <paramref name="ring"/>, opening it if need be.</summary>
    public Task<ParamDbStream> GetAsync(ClusterRing ring, int nodeIndex)
    {
        string id = ring.Nodes[nodeIndex];
        lock (_sync)
        {
            string? h2 = _node.Manager.State.Nodes.TryGetValue(id, out var info) ? info.H2 : null;
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
                ConnectTimeout = 2 * _node.Options.DownAfter,
                // One replay on a fresh connection when a link breaks under a request: a stamped push replays
                // exactly once (the peer's clocks skip what it already applied); more is the caller's to decide.
                MaxRetries = 1,
                Headers = _node.Options.Secret is { } secret ? new Dictionary<string, string> { [PeerHttp.SecretHeader] = secret, [PeerHttp.PeerHeader] = _node.Identity.NodeId } : new Dictionary<string, string> { [PeerHttp.PeerHeader] = _node.Identity.NodeId },
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
        _node.RingChanged -= OnRingChanged;
        Task<ParamDbStream>[] links;
        lock (_sync)
        {
            links = [.. _links.Values];
            _links.Clear();
            _untilDown.Clear();
        }
        foreach (Task<ParamDbStream> link in links)
        {
            if (link.IsCompletedSuccessfully) await link.Result.DisposeAsync().ConfigureAwait(false);
        }
    }
}
