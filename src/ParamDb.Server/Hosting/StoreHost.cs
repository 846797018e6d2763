using System.Diagnostics;
using ParamDb.Protocol;
using ParamDb.Server.Options;
using ParamDb.Storage;
using ParamDb.Storage.Snapshots;

namespace ParamDb.Server.Hosting;

/// <summary>
/// Owns the node's <see cref="ParamStore"/>: opens (and recovers) it when the host starts, takes a final
/// checkpoint and closes it on clean shutdown (SIGTERM, Ctrl-C), and swaps it for a snapshot on a restore. FASTER
/// opens here rather than in <c>Build()</c> because the build-time OpenAPI generator runs the program up to
/// <c>Build()</c>. ASP.NET starts user hosted services before Kestrel and stops them after it, so no request sees
/// a closed store.
/// </summary>
public sealed partial class StoreHost(NodeSettings settings, ILogger<StoreHost> logger, IHostApplicationLifetime lifetime) : IHostedService, IDisposable
{
    private ParamStore? _store;
    private SnapshotLibrary? _snapshots;
    private FileStream? _lock;
    private readonly SemaphoreSlim _restoring = new(1, 1);
    private CancellationTokenSource _restoreStarting = new();

    /// <summary>The open store; null before start, after stop, and when a failed restore could not reopen any state.</summary>
    public ParamStore? Store => _store;

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
        _store = ParamStore.Open(StoreOptions(), logger);
        _snapshots = new SnapshotLibrary(StoreOptions(), settings.SnapshotsToKeep, logger);
        // Kestrel waits for running requests before the store stops: end waiting pulls first, or a shutdown would
        // last as long as the longest clock wait (30 s by default).
        lifetime.ApplicationStopping.Register(() => _store?.EndClockWaits());
        return Task.CompletedTask;
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
            Log.Restored(logger, name, paused.Elapsed.TotalMilliseconds);
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
        Interlocked.Exchange(ref _store, null)?.Dispose();
        try
        {
            _store = ParamStore.Open(StoreOptions(), logger);   // finishes the staged restore (RestoreStaging)
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.RestoreFailed(logger, e);
            _snapshots!.RollBackRestore();
            _store = ParamStore.Open(StoreOptions(), logger);
            throw;
        }
    }

    private StoreOptions StoreOptions() => new()
    {
        DataDirectory = settings.DataDirectory,
        MemoryBytes = settings.MemoryBytes,
        CheckpointsToKeep = settings.CheckpointsToKeep,
        Durability = settings.Durability,
    };

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _restoring.WaitAsync(CancellationToken.None);   // a restore finishes its swap before the node stops
        var store = Interlocked.Exchange(ref _store, null);
        Interlocked.Exchange(ref _snapshots, null)?.Dispose();
        if (store is null) return;
        try
        {
            var result = await store.CheckpointAsync(CancellationToken.None);
            Log.ShutdownCheckpoint(logger, result.Token, result.Duration.TotalMilliseconds);
        }
        finally
        {
            store.Dispose();
            _lock?.Dispose();
            _lock = null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Interlocked.Exchange(ref _store, null)?.Dispose();
        Interlocked.Exchange(ref _snapshots, null)?.Dispose();
        _lock?.Dispose();
        _restoreStarting.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(2, LogLevel.Information, "Shutdown checkpoint {Token} took {Milliseconds:F0} ms")]
        public static partial void ShutdownCheckpoint(ILogger logger, Guid token, double milliseconds);

        [LoggerMessage(3, LogLevel.Information, "Restored snapshot {Name}; requests were held for {Milliseconds:F0} ms")]
        public static partial void Restored(ILogger logger, string name, double milliseconds);

        [LoggerMessage(4, LogLevel.Error, "The restored snapshot did not open; rolling back to the node's own data")]
        public static partial void RestoreFailed(ILogger logger, Exception exception);
    }
}
