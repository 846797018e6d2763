using System.Diagnostics;
using ParamDb.Protocol;
using ParamDb.Server.Options;
using ParamDb.Cluster.Directories;
using ParamDb.Cluster.Membership;
using ParamDb.Cluster.Replication;
using ParamDb.Cluster.Routing;
using ParamDb.Storage;
using ParamDb.Storage.Local;
using ParamDb.Storage.Snapshots;

namespace ParamDb.Server.Hosting;

/// <summary>
/// Owns the node's <see cref="ParamStore"/> and wires the seams over it (<see cref="Node"/>): opens (and recovers)
/// the store when the host starts, takes a final checkpoint and closes it on clean shutdown (SIGTERM, Ctrl-C), and
/// swaps it for a snapshot on a restore. The only place in the server that names the store. FASTER
/// opens here rather than in <c>Build()</c> because the build-time OpenAPI generator runs the program up to
/// <c>Build()</c>. ASP.NET starts user hosted services before Kestrel and stops them after it, so no request sees
/// a closed store.
/// </summary>
public sealed class StoreHost(NodeSettings settings, ClusterHost cluster, ILogger<StoreHost> logger, IHostApplicationLifetime lifetime) : IHostedService, IDisposable
{
    private ParamStore? _store;
    private NodeServices? _node;
    private LocalWorkerDirectory? _workers;
    private MetadataMirror? _mirror;
    private PeerLinks? _peers;
    private StoreRanges? _ranges;
    private Replicator? _replicator;
    private SnapshotLibrary? _snapshots;
    private FileStream? _lock;
    private readonly SemaphoreSlim _restoring = new(1, 1);
    private CancellationTokenSource _restoreStarting = new();

    /// <summary>The node's seams; null before start, after stop, and when a failed restore could not reopen any state.</summary>
    public NodeServices? Node => Volatile.Read(ref _node);

    /// <summary>Write-ahead log bytes appended since the last checkpoint (the checkpoint loop's size rule); 0 when closed.</summary>
    internal long WalBytesSinceCheckpoint => _store?.WalBytesSinceCheckpoint ?? 0;

    /// <summary>The node's named snapshots; null before start.</summary>
    public SnapshotLibrary? Snapshots => _snapshots;

    /// <summary>Requests using the store pass it; a restore closes it while it swaps the store.</summary>
    public StoreGate Gate { get; } = new();

    /// <summary>Cancelled when a restore starts: streams end then, as they do at shutdown, so the restore can drain them.</summary>
    public CancellationToken RestoreStarting => Volatile.Read(ref _restoreStarting).Token;

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(settings.DataDirectory);
        _lock = DataDirectoryLock.Acquire(settings.DataDirectory);
        Attach(ParamStore.Open(StoreOptions(), logger));
        _snapshots = new SnapshotLibrary(StoreOptions(), settings.SnapshotsToKeep, logger);
        // Kestrel waits for running requests before the store stops: end waiting pulls first, or a shutdown would
        // last as long as the longest clock wait (30 s by default).
        lifetime.ApplicationStopping.Register(() => _store?.EndClockWaits());
        return Task.CompletedTask;
    }

    /// <summary>
    /// Wires the seams over a just-opened store: a single node's local ones, or, for a cluster member, the router,
    /// the manager's directories and the mirror that keeps the store's tables and workers in step with them.
    /// </summary>
    private void Attach(ParamStore store)
    {
        // In a cluster the leases are only reported here: the manager's leader decides expiry for every node.
        var workers = new LocalWorkerDirectory(store, logger, decidesExpiry: cluster.Member is null);
        var local = new LocalDataPlane(store, workers, new DataLimits(settings.MaxKeys, settings.MaxBodyBytes));
        _store = store;
        _workers = workers;
        if (cluster.Member is not { } member)
        {
            Volatile.Write(ref _node, new NodeServices(local, new LocalTableDirectory(store, logger), workers, new LocalRangeOwnership(store.Ranges), store));
            return;
        }
        var mirror = new MetadataMirror(logger, workers.Adopt);
        mirror.Attach(store, member.Manager.State);
        member.Manager.StateChanged += mirror.OnStateChanged;
        _mirror = mirror;
        _ranges = new StoreRanges(member, store, logger);
        _peers = new PeerLinks(member);
        _replicator = new Replicator(member, store, logger);
        Volatile.Write(ref _node, new NodeServices(new Router(member, local, _peers, _replicator, _ranges), new ClusterTableDirectory(member, store),
            new ClusterWorkerDirectory(member, workers), new ClusterOwnership(member), store) { Cluster = member, Transfer = store, Replicator = _replicator });
    }

    /// <summary>Unwires the seams and closes the store (no request may be using it).</summary>
    private void Detach()
    {
        Volatile.Write(ref _node, null);
        if (Interlocked.Exchange(ref _mirror, null) is { } mirror)
        {
            if (cluster.Member is { } member) member.Manager.StateChanged -= mirror.OnStateChanged;
            mirror.Detach();
        }
        if (Interlocked.Exchange(ref _replicator, null) is { } replicator) replicator.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Interlocked.Exchange(ref _ranges, null)?.Dispose();
        if (Interlocked.Exchange(ref _peers, null) is { } peers) peers.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Interlocked.Exchange(ref _workers, null)?.Dispose();
        Interlocked.Exchange(ref _store, null)?.Dispose();
    }

    /// <summary>
    /// Takes a named snapshot of the node (docs/snapshots.md).
    /// </summary>
    /// <exception cref="InvalidOperationException">The store is not open.</exception>
    public Task<SnapshotInfo> CreateSnapshotAsync(string name, CancellationToken cancellationToken)
    {
        ParamStore store = _store ?? throw new InvalidOperationException("The store is not open.");
        SnapshotLibrary snapshots = _snapshots ?? throw new InvalidOperationException("The node has not started.");
        return snapshots.CreateAsync(store, name, cancellationToken);
    }

    /// <summary>
    /// Replaces the node's whole state (every table, row, clock and worker) with a snapshot's. The copy runs while
    /// the node serves; then new requests wait, running ones finish (streams are ended, waiting pulls answered),
    /// the store closes, the snapshot's files move in and the store reopens on them. Writes acknowledged before
    /// the restore are gone afterwards: that is what a restore means.
    /// </summary>
    /// <returns>The snapshot restored, and how long requests were held.</returns>
    /// <exception cref="SnapshotException">The name is invalid or unknown.</exception>
    /// <exception cref="InvalidDataException">The snapshot is damaged; the node kept its data.</exception>
    /// <exception cref="InvalidOperationException">Another restore is running.</exception>
    public async Task<(SnapshotInfo Snapshot, TimeSpan Paused)> RestoreAsync(string name, CancellationToken cancellationToken)
    {
        SnapshotLibrary snapshots = _snapshots ?? throw new InvalidOperationException("The node has not started.");
        if (!await _restoring.WaitAsync(0, cancellationToken)) throw new InvalidOperationException("Another restore is running on this node; wait for it to finish.");
        try
        {
            // Staged first, while the node serves: a failure here (unknown name, damaged snapshot, full disk)
            // leaves the node as it was.
            SnapshotInfo info = await Task.Run(() => snapshots.StageRestore(name), cancellationToken);
            var paused = Stopwatch.StartNew();
            Task drained = Gate.CloseAsync();
            CancellationTokenSource starting = Volatile.Read(ref _restoreStarting);
            try
            {
                // Cancelled, not yet replaced: a stream that got in just before the gate closed and reads the
                // token only now must see it cancelled too, or the drain would wait for it forever.
                await starting.CancelAsync();
                _store?.EndClockWaits();
                await drained;   // no timeout: a request inside always ends (streams and clock waits were just ended)
                await Task.Run(SwapStore, CancellationToken.None);
            }
            finally
            {
                Volatile.Write(ref _restoreStarting, new CancellationTokenSource());   // before the gate opens: new streams get a live token
                starting.Dispose();
                Gate.Open();
            }
            logger.Restored(name, paused.Elapsed.TotalMilliseconds);
            return (info, paused.Elapsed);
        }
        finally
        {
            _restoring.Release();
        }
    }

    /// <summary>Closes the store and reopens it on the staged snapshot, or back on its own data if that fails.</summary>
    private void SwapStore()
    {
        Detach();
        try
        {
            Attach(ParamStore.Open(StoreOptions(), logger));   // finishes the staged restore (RestoreStaging)
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            logger.RestoreFailed(e);
            _snapshots!.RollBackRestore();
            Attach(ParamStore.Open(StoreOptions(), logger));
            throw;
        }
    }

    private StoreOptions StoreOptions() => new()
    {
        // A cluster member's ranges are its ring tokens: one vector clock per arc it owns.
        Ring = cluster.Member is { } member ? new ParamDb.Protocol.Ring(member.Identity.Tokens) : ParamDb.Storage.StoreOptions.SingleNodeRing,
        DataDirectory = settings.DataDirectory,
        MemoryBytes = settings.MemoryBytes,
        CheckpointsToKeep = settings.CheckpointsToKeep,
        Durability = settings.Durability,
    };

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _restoring.WaitAsync(CancellationToken.None);   // a restore finishes its swap before the node stops
        ParamStore? store = _store;
        Volatile.Write(ref _node, null);
        Interlocked.Exchange(ref _snapshots, null)?.Dispose();
        if (store is null) return;
        try
        {
            var result = await store.CheckpointAsync(CancellationToken.None);
            logger.ShutdownCheckpoint(result.Token, result.Duration.TotalMilliseconds);
        }
        finally
        {
            Detach();
            _lock?.Dispose();
            _lock = null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Detach();
        Interlocked.Exchange(ref _snapshots, null)?.Dispose();
        _lock?.Dispose();
        _restoreStarting.Dispose();
    }
}
