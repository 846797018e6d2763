using System.Collections.Concurrent;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Client.Internal;

/// <summary>
/// A cluster as a client routes by it: the ring of one epoch (<see cref="ClusterRing"/>) and, per node index of
/// that ring, where to reach the node over REST and over the stream. Immutable; replaced whole on a refresh.
/// </summary>
internal sealed class ClusterMap
{
    private ClusterMap(ClusterRing ring, Uri?[] rest, Uri?[] h2)
    {
        Ring = ring;
        Rest = rest;
        H2 = h2;
        bool allRest = true, allH2 = true;
        foreach (Uri? u in rest) allRest &= u is not null;
        foreach (Uri? u in h2) allH2 &= u is not null;
        RoutesRest = ring.NodeCount > 1 && allRest;
        RoutesStream = ring.NodeCount > 1 && allH2;
    }

    /// <summary>The ring: <see cref="ClusterRing.PrimaryOf(ulong, ulong)"/> names node indices into <see cref="Rest"/> and <see cref="H2"/>.</summary>
    public ClusterRing Ring { get; }

    /// <summary>The epoch sent with every sliced request.</summary>
    public ulong Epoch => Ring.Epoch;

    /// <summary>Nodes in the ring.</summary>
    public int NodeCount => Ring.NodeCount;

    /// <summary>REST base address per node index (the HTTP/1.1 or the h2c port, as the client speaks), ending in '/'; null when the view had none.</summary>
    public Uri?[] Rest { get; }

    /// <summary>h2c base address per node index (the stream), ending in '/'; null when the view had none.</summary>
    public Uri?[] H2 { get; }

    /// <summary>Several nodes, each with a REST address: a REST client slices by this ring.</summary>
    public bool RoutesRest { get; }

    /// <summary>Several nodes, each with an h2c address: a worker slices by this ring.</summary>
    public bool RoutesStream { get; }

    /// <summary>Node id of index <paramref name="node"/>.</summary>
    public string Id(int node) => Ring.Nodes[node];

    /// <summary>The map of a <c>GET /v1/cluster</c> document.</summary>
    /// <param name="view">The document.</param>
    /// <param name="scheme">Scheme of the REST addresses (the client's own: http or https).</param>
    /// <param name="restOverH2">True when the client speaks HTTP/2 to the h2c port, so its REST calls go to <c>h2</c>.</param>
    /// <exception cref="FormatException">The document does not describe a ring.</exception>
    public static ClusterMap From(ClusterView view, string scheme, bool restOverH2)
    {
        ClusterRing ring = ClusterRing.FromView(view);
        var rest = new Uri?[ring.NodeCount];
        var h2 = new Uri?[ring.NodeCount];
        foreach (ClusterNode node in view.Nodes)
        {
            int i = ring.NodeIndex(node.Id);
            h2[i] = Address("http", node.H2);
            rest[i] = Address(scheme, restOverH2 ? node.H2 : node.Http);
        }
        return new ClusterMap(ring, rest, h2);
    }

    private static Uri? Address(string scheme, string? hostPort) =>
        string.IsNullOrEmpty(hostPort) || !Uri.TryCreate($"{scheme}://{hostPort}/", UriKind.Absolute, out Uri? uri) ? null : uri;
}

/// <summary>
/// Where a client's <see cref="ClusterMap"/> comes from: fetched (<c>GET /v1/cluster</c>) on first use, refetched when
/// a node refuses a sliced request with 421 <c>wrong_node</c>. Concurrent refreshes of one stale map share one fetch.
/// </summary>
internal sealed class RingSource
{
    // After a failed first fetch, data calls go whole to the client's address, and the fetch is tried again after this.
    private static readonly TimeSpan RetryFirstFetch = TimeSpan.FromSeconds(5);

    private readonly Func<Uri?, CancellationToken, Task<ClusterView>> _fetch;
    private readonly string _scheme;
    private readonly bool _restOverH2;
    private readonly object _lock = new();
    private readonly ConcurrentDictionary<string, ulong> _tableHashes = new(StringComparer.Ordinal);
    private ClusterMap? _current;
    private bool _settled;
    private long _retryAt;
    private Task<ClusterMap?>? _pending;
    private long _wrongNode;
    private long _refreshes;

    /// <summary>How long a routed call retries a failing node (<see cref="ParamDbClientOptions.FailoverWait"/>).</summary>
    public TimeSpan FailoverWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <param name="fetch">Fetches the cluster document from a node's REST address (null: the client's own address).</param>
    /// <param name="enabled">False: never fetches; every call goes whole to the client's address.</param>
    /// <param name="scheme">The client's scheme.</param>
    /// <param name="restOverH2">True when the client speaks HTTP/2 to the h2c port.</param>
    public RingSource(Func<Uri?, CancellationToken, Task<ClusterView>> fetch, bool enabled, string scheme, bool restOverH2)
    {
        _fetch = fetch;
        Enabled = enabled;
        _scheme = scheme;
        _restOverH2 = restOverH2;
    }

    /// <summary>False when routing is off.</summary>
    public bool Enabled { get; }

    /// <summary>The map in use, or null (not fetched, not a cluster, or routing off).</summary>
    public ClusterMap? Current => Volatile.Read(ref _current);

    /// <summary>421 <c>wrong_node</c> replies seen.</summary>
    public long WrongNodeReplies => Interlocked.Read(ref _wrongNode);

    /// <summary>Maps fetched after a 421.</summary>
    public long Refreshes => Interlocked.Read(ref _refreshes);

    /// <summary>The table's ring hash, computed once per name.</summary>
    public ulong TableHash(string table) => _tableHashes.TryGetValue(table, out ulong hash) ? hash : _tableHashes.GetOrAdd(table, Ring.NameHash(table));

    /// <summary>
    /// The map, fetching it on first use. Null when routing is off, the server has no ring to route by, or it
    /// could not be fetched (then the call goes whole to the client's address, and the fetch is retried later).
    /// </summary>
    public ValueTask<ClusterMap?> GetAsync(CancellationToken cancellationToken)
    {
        if (!Enabled || Volatile.Read(ref _settled)) return new(Volatile.Read(ref _current));
        if (Environment.TickCount64 < Interlocked.Read(ref _retryAt)) return new((ClusterMap?)null);
        return FirstAsync(cancellationToken);
    }

    private async ValueTask<ClusterMap?> FirstAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await StartFetch(stale: null, hint: null).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ParamDbException e) when (e.Status is 404 or 405 or 501)
        {
            // A server without GET /v1/cluster: never a cluster.
            lock (_lock) _settled = true;
            return null;
        }
        catch (Exception e) when (e is ParamDbException or HttpRequestException or IOException or InvalidDataException or FormatException
                                   or System.Text.Json.JsonException or TimeoutException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            Interlocked.Exchange(ref _retryAt, Environment.TickCount64 + (long)RetryFirstFetch.TotalMilliseconds);
            return null;
        }
    }

    /// <summary>Counts a 421 reply.</summary>
    public void NoteWrongNode() => Interlocked.Increment(ref _wrongNode);

    /// <summary>
    /// A newer map after a node refused a request sliced by <paramref name="stale"/>: the current one if another call
    /// has already replaced <paramref name="stale"/>, else one fetched from the node that refused (it knows the
    /// newer ring), then the others.
    /// </summary>
    public Task<ClusterMap?> RefreshAsync(ClusterMap stale, int refusedBy, CancellationToken cancellationToken)
    {
        Uri? hint = refusedBy >= 0 && refusedBy < stale.NodeCount ? stale.Rest[refusedBy] : null;
        return StartFetch(stale, hint).WaitAsync(cancellationToken);
    }

    /// <summary>Uses this document from now on (tests give a stale ring this way).</summary>
    public void Set(ClusterView view)
    {
        ClusterMap map = ClusterMap.From(view, _scheme, _restOverH2);
        lock (_lock)
        {
            _current = map;
            _settled = true;
        }
    }

    private Task<ClusterMap?> StartFetch(ClusterMap? stale, Uri? hint)
    {
        lock (_lock)
        {
            if (stale is not null && _current is { } newer && !ReferenceEquals(newer, stale)) return Task.FromResult<ClusterMap?>(newer);
            if (stale is null && _settled) return Task.FromResult(_current);
            return _pending ??= FetchAsync(stale is not null, hint);
        }
    }

    private async Task<ClusterMap?> FetchAsync(bool refresh, Uri? hint)
    {
        await Task.Yield(); // the caller holds the lock
        try
        {
            ClusterView view = await FetchFromAnyAsync(hint).ConfigureAwait(false);
            ClusterMap map = ClusterMap.From(view, _scheme, _restOverH2);
            lock (_lock)
            {
                _current = map;
                _settled = true;
            }
            if (refresh) Interlocked.Increment(ref _refreshes);
            return map;
        }
        finally
        {
            lock (_lock) _pending = null;
        }
    }

    /// <summary>Asks <paramref name="hint"/>, then the client's address, then every node of the current map; the first answer wins.</summary>
    private async Task<ClusterView> FetchFromAnyAsync(Uri? hint)
    {
        Exception? first = null;
        if (hint is not null)
        {
            try
            {
                return await _fetch(hint, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || e is TaskCanceledException)
            {
                first = e;
            }
        }
        try
        {
            return await _fetch(null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (Current is not null && (e is not OperationCanceledException || e is TaskCanceledException))
        {
            first ??= e;
        }
        foreach (Uri? node in Current!.Rest)
        {
            if (node is null || node == hint) continue;
            try
            {
                return await _fetch(node, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || e is TaskCanceledException)
            {
                // Try the next node.
            }
        }
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        throw first; // not reached
    }
}
