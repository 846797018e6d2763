using System.Diagnostics;
using ParamDb.Server.Options;

namespace ParamDb.Server.Hosting;

/// <summary>
/// Takes a checkpoint every <see cref="NodeSettings.CheckpointInterval"/>, and early once the write-ahead log has
/// grown by <see cref="NodeSettings.CheckpointWalBytes"/>: both bound recovery time, the second under a push load
/// heavy enough to log gigabytes within one interval.
/// </summary>
public sealed class CheckpointLoop(StoreHost host, NodeSettings settings, ILogger<CheckpointLoop> logger) : BackgroundService
{
    /// <summary>How often the log size is looked at: at 1 GB/s of pushes a 2 GiB bound is overshot by ~10 %.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        bool byTime = settings.CheckpointInterval > TimeSpan.Zero;
        bool bySize = settings.CheckpointWalBytes > 0;
        if (!byTime && !bySize) return;
        TimeSpan tick = byTime && settings.CheckpointInterval < Poll ? settings.CheckpointInterval : Poll;
        using var timer = new PeriodicTimer(bySize ? tick : settings.CheckpointInterval);
        var sinceLast = Stopwatch.StartNew();
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            // Through the gate, like a request: a restore must not close the store under a running checkpoint.
            using StoreGate.Pass pass = await host.Gate.EnterAsync(stoppingToken);
            if (host.Node is not { } node) continue;
            long walBytes = host.WalBytesSinceCheckpoint;
            bool due = byTime && sinceLast.Elapsed >= settings.CheckpointInterval;
            bool full = bySize && walBytes >= settings.CheckpointWalBytes;
            if (!due && !full) continue;
            try
            {
                var result = await node.Storage.CheckpointAsync(stoppingToken);
                if (full && !due) logger.WalCheckpoint(result.Token, walBytes >> 20, result.Duration.TotalMilliseconds);
                else logger.Checkpoint(result.Token, result.Duration.TotalMilliseconds);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A failed periodic checkpoint leaves the previous one valid; try again next time.
                logger.CheckpointFailed(e);
            }
            sinceLast.Restart();
        }
    }
}
