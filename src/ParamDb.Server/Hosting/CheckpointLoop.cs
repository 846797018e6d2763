using ParamDb.Server.Options;

namespace ParamDb.Server.Hosting;

/// <summary>Takes a checkpoint every <see cref="NodeSettings.CheckpointInterval"/>, bounding recovery time.</summary>
public sealed partial class CheckpointLoop(StoreHost host, NodeSettings settings, ILogger<CheckpointLoop> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (settings.CheckpointInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(settings.CheckpointInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (host.Store is not { } store) continue;
            try
            {
                var result = await store.CheckpointAsync(stoppingToken);
                Log.Checkpoint(logger, result.Token, result.Duration.TotalMilliseconds);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A failed periodic checkpoint leaves the previous one valid; try again next tick.
                Log.CheckpointFailed(logger, e);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Information, "Periodic checkpoint {Token} took {Milliseconds:F0} ms")]
        public static partial void Checkpoint(ILogger logger, Guid token, double milliseconds);

        [LoggerMessage(11, LogLevel.Error, "Periodic checkpoint failed; the previous checkpoint stays the recovery point")]
        public static partial void CheckpointFailed(ILogger logger, Exception exception);
    }
}
