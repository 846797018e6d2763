using ParamDb.Server.Options;
using ParamDb.Storage;

namespace ParamDb.Server.Hosting;

/// <summary>
/// Owns the node's <see cref="ParamStore"/>: opens (and recovers) it when the host starts, takes a final
/// checkpoint and closes it on clean shutdown (SIGTERM, Ctrl-C). FASTER opens here rather than in
/// <c>Build()</c> because the build-time OpenAPI generator runs the program up to <c>Build()</c>.
/// ASP.NET starts user hosted services before Kestrel and stops them after it, so no request sees a
/// closed store.
/// </summary>
public sealed partial class StoreHost(NodeSettings settings, ILogger<StoreHost> logger, IHostApplicationLifetime lifetime) : IHostedService, IDisposable
{
    private ParamStore? _store;
    private FileStream? _lock;

    /// <summary>The open store; null before start and after stop.</summary>
    public ParamStore? Store => _store;

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(settings.DataDirectory);
        _lock = DataDirectoryLock.Acquire(settings.DataDirectory);
        _store = ParamStore.Open(new StoreOptions
        {
            DataDirectory = settings.DataDirectory,
            MemoryBytes = settings.MemoryBytes,
            CheckpointsToKeep = settings.CheckpointsToKeep,
            Durability = settings.Durability,
        }, logger);
        // Kestrel waits for running requests before the store stops: end waiting pulls first, or a shutdown would
        // last as long as the longest clock wait (30 s by default).
        lifetime.ApplicationStopping.Register(() => _store?.EndClockWaits());
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var store = Interlocked.Exchange(ref _store, null);
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
        _lock?.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(2, LogLevel.Information, "Shutdown checkpoint {Token} took {Milliseconds:F0} ms")]
        public static partial void ShutdownCheckpoint(ILogger logger, Guid token, double milliseconds);
    }
}
