using System.Diagnostics;
using ParamDb.Client;

namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// One worker's training loop, as in the paper's Algorithm 1: per iteration, pull the weights of the minibatch's keys
/// (waiting as the worker's consistency asks), compute the gradient, push it (the table's Adagrad updater applies it
/// on the server), end the iteration.
/// </summary>
internal static class TrainingWorker
{
    /// <summary>Runs <paramref name="iterations"/> iterations of <paramref name="worker"/> over its shard.</summary>
    /// <param name="worker">The registered worker; its options carry the consistency of every pull.</param>
    /// <param name="index">The worker's index, 0-based: picks its simulated compute times.</param>
    /// <param name="table">The weights table, one float per key.</param>
    /// <param name="shard">This worker's examples; iteration k takes the k-th run of <paramref name="batchSize"/> of them.</param>
    /// <param name="iterations">Number of iterations.</param>
    /// <param name="batchSize">Examples per minibatch.</param>
    /// <param name="stragglers">Simulated compute time per iteration.</param>
    /// <param name="log">Where each iteration's loss and staleness go.</param>
    /// <param name="wall">Started when training started; timestamps the iterations.</param>
    /// <param name="cancellationToken">Set when another worker failed or the user pressed Ctrl-C.</param>
    public static async Task<WorkerTotals> RunAsync(ParamDbWorker worker, int index, string table, SparseDataset shard, int iterations,
        int batchSize, StragglerModel stragglers, IterationLog log, Stopwatch wall, CancellationToken cancellationToken)
    {
        var batch = new Minibatch();
        TimeSpan pullWait = TimeSpan.Zero, compute = TimeSpan.Zero;
        long maxStaleness = 0;
        for (int iteration = 1; iteration <= iterations; iteration++)
        {
            // worker.Clock == iteration: only EndIterationAsync moves it.
            batch.Fill(shard, (iteration - 1) * batchSize, batchSize);

            long pullStart = Stopwatch.GetTimestamp();
            PullResult pulled = await worker.PullAsync(table, batch.Keys, batch.Weights, cancellationToken: cancellationToken);
            pullWait += Stopwatch.GetElapsedTime(pullStart);
            // The weights hold every worker's pushes up to ClockMin. Fresh (what sequential waits for) would be up to
            // this iteration - 1; the difference is how many iterations of the slowest worker this gradient misses.
            long staleness = Math.Max(0, iteration - 1 - (long)pulled.ClockMin);
            maxStaleness = Math.Max(maxStaleness, staleness);

            double loss = Logistic.LossAndGradient(batch);
            TimeSpan work = stragglers.ComputeTime(index, iteration);
            await Task.Delay(work, cancellationToken);
            compute += work;

            await worker.PushAsync(table, batch.Keys, batch.Gradient, cancellationToken: cancellationToken);
            await worker.EndIterationAsync(cancellationToken);
            log.Record(iteration, loss, batch.Size, staleness, wall.Elapsed);
        }
        return new WorkerTotals(index, pullWait, compute, maxStaleness, wall.Elapsed);
    }
}
