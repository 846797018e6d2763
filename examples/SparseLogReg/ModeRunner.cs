using System.Diagnostics;
using System.Runtime.ExceptionServices;
using ParamDb.Client;
using ParamDb.Protocol;

namespace ParamDb.Examples.SparseLogReg;

/// <summary>The outcome of training under one consistency mode.</summary>
/// <param name="Mode">The consistency of every pull.</param>
/// <param name="Table">The table it trained.</param>
/// <param name="Wall">From the start of training until the last worker ended its last iteration.</param>
/// <param name="HeldOutLoss">Mean log loss on the held-out examples at the final weights.</param>
/// <param name="Workers">Per-worker totals.</param>
/// <param name="Log">Per-iteration loss, staleness and completion time.</param>
internal sealed record ModeResult(Consistency Mode, string Table, TimeSpan Wall, double HeldOutLoss, WorkerTotals[] Workers, IterationLog Log)
{
    /// <summary>Time all workers together spent in pulls.</summary>
    public TimeSpan PullWait
    {
        get
        {
            var sum = TimeSpan.Zero;
            foreach (var w in Workers) sum += w.PullWait;
            return sum;
        }
    }

    /// <summary>The most clocks any pull was behind.</summary>
    public long MaxStaleness
    {
        get
        {
            long max = 0;
            foreach (var w in Workers) max = Math.Max(max, w.MaxStaleness);
            return max;
        }
    }
}

/// <summary>
/// Trains the model once per consistency mode, each time from scratch: a fresh table, freshly registered workers on
/// the same shards and the same straggler delays, so the mode is the only difference between runs.
/// </summary>
internal sealed class ModeRunner(ExampleOptions options, ParamDbClient db, Uri streamUrl, SparseDataset[] shards, Minibatch heldOut, StragglerModel stragglers)
{
    /// <summary>One table per mode: <c>lr_eventual</c>, <c>lr_bounded2</c>, <c>lr_sequential</c>.</summary>
    public static string TableName(Consistency mode) => "lr_" + mode.ToString().Replace(":", "", StringComparison.Ordinal);

    /// <summary>Trains under <paramref name="mode"/> and measures the held-out loss of the result.</summary>
    public async Task<ModeResult> RunAsync(Consistency mode, CancellationToken cancellationToken)
    {
        string table = TableName(mode);
        var (totals, wall, log) = await TrainAsync(mode, table, options.Iterations, cancellationToken);

        // The honest end result: every mode applied the same number of gradients; how good is the model they made?
        await db.PullAsync(table, heldOut.Keys, heldOut.Weights, cancellationToken);
        return new ModeResult(mode, table, wall, Logistic.MeanLoss(heldOut), totals, log);
    }

    /// <summary>
    /// A few untimed iterations on a scratch table. Each run is a new process, so without this the JIT compilation of
    /// the client's and the example's code, and the first connections, would land in the first mode's wall time
    /// (0.1–0.3 s here, iteration 1 only) and penalise whichever mode runs first.
    /// </summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        const string table = "lr_warmup";
        await TrainAsync(Consistency.Sequential, table, iterations: 3, cancellationToken);
        await db.DeleteTableAsync(table, cancellationToken);
    }

    private async Task<(WorkerTotals[] Totals, TimeSpan Wall, IterationLog Log)> TrainAsync(Consistency mode, string table, int iterations,
        CancellationToken cancellationToken)
    {
        await RecreateTableAsync(table, cancellationToken);
        var log = new IterationLog(iterations);
        var workers = new ParamDbWorker?[options.Workers];
        try
        {
            // Register every worker before any starts: a consistent pull waits only for workers registered by then,
            // so a worker registering late would let the first ones run ahead unchecked.
            var workerOptions = new ParamDbWorkerOptions { Consistency = mode };
            for (int i = 0; i < workers.Length; i++)
            {
                workers[i] = await ParamDbWorker.RegisterAsync(streamUrl, $"{table}-w{i}", [table], options: workerOptions,
                    cancellationToken: cancellationToken);
            }
            var (totals, wall) = await RunWorkersAsync(workers!, table, iterations, log, cancellationToken);
            return (totals, wall, log);
        }
        finally
        {
            // Leave (DELETE /v1/workers/{id}): otherwise these ids would count for the table until their leases ran out.
            foreach (var worker in workers)
            {
                if (worker is not null) await worker.DisposeAsync();
            }
        }
    }

    private async Task<(WorkerTotals[], TimeSpan)> RunWorkersAsync(ParamDbWorker[] workers, string table, int iterations, IterationLog log,
        CancellationToken cancellationToken)
    {
        // If one worker fails, stop the others: under sequential consistency they would otherwise wait for it until
        // the server's clock-wait timeout (30 s).
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Exception? firstFailure = null;
        var wall = Stopwatch.StartNew();
        var tasks = new Task<WorkerTotals>[workers.Length];
        for (int i = 0; i < workers.Length; i++)
        {
            int index = i;
            tasks[i] = Task.Run(async () =>
            {
                try
                {
                    return await TrainingWorker.RunAsync(workers[index], index, table, shards[index], iterations, options.Batch,
                        stragglers, log, wall, failed.Token);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref firstFailure, e, null);
                    await failed.CancelAsync();
                    throw;
                }
            }, CancellationToken.None);
        }
        try
        {
            var totals = await Task.WhenAll(tasks);
            return (totals, wall.Elapsed);
        }
        catch when (firstFailure is not null && !cancellationToken.IsCancellationRequested)
        {
            // WhenAll reports the first task's exception, which may be a cancellation caused by another's failure.
            ExceptionDispatchInfo.Throw(firstFailure);
            throw;
        }
    }

    /// <summary>Deletes a table left by an earlier run, so every run starts from zero weights and fresh Adagrad state.</summary>
    private async Task RecreateTableAsync(string table, CancellationToken cancellationToken)
    {
        try
        {
            await db.DeleteTableAsync(table, cancellationToken);
        }
        catch (ParamDbException e) when (e.Code == ProblemCodes.TableNotFound)
        {
            // First run against this node.
        }
        await db.CreateTableAsync(table, new TableSchema
        {
            Dim = 1,
            Init = new InitializerSpec { Kind = InitializerSpec.Zeros },
            // Adagrad: each key's step shrinks with its own gradient history, so hot keys (seen in every batch) take
            // small steps and rare keys large ones — the usual choice for sparse logistic regression.
            Updater = new UpdaterSpec { Kind = UpdaterSpec.Adagrad, Lr = options.LearningRate },
        }, cancellationToken);
    }
}
