namespace ParamDb.Examples.SparseLogReg;

/// <summary>One iteration, over all workers.</summary>
/// <param name="MeanLoss">Mean log loss of the workers' minibatches at the weights each pulled for it.</param>
/// <param name="MeanStaleness">Mean over workers of how many clocks the slowest worker was behind when the pull returned.</param>
/// <param name="Done">When the last worker finished the iteration, from the start of training.</param>
internal readonly record struct IterationRow(double MeanLoss, double MeanStaleness, TimeSpan Done);

/// <summary>
/// Collects what the workers report per iteration. Workers of one mode reach an iteration at different times (under
/// eventual consistency, many iterations apart), so rows fill in any order; a row is complete once every worker has
/// reported it.
/// </summary>
internal sealed class IterationLog
{
    private readonly object _lock = new();
    private readonly double[] _lossSum;
    private readonly long[] _examples;
    private readonly long[] _stalenessSum;
    private readonly int[] _reported;
    private readonly TimeSpan[] _done;

    /// <summary>A log of <paramref name="iterations"/> iterations.</summary>
    public IterationLog(int iterations)
    {
        _lossSum = new double[iterations];
        _examples = new long[iterations];
        _stalenessSum = new long[iterations];
        _reported = new int[iterations];
        _done = new TimeSpan[iterations];
    }

    /// <summary>Number of iterations.</summary>
    public int Iterations => _lossSum.Length;

    /// <summary>A worker finished <paramref name="iteration"/> (1-based) at <paramref name="at"/>.</summary>
    /// <param name="iteration">The iteration, i.e. the worker's clock during it.</param>
    /// <param name="lossSum">Summed log loss of its minibatch.</param>
    /// <param name="examples">Examples in the minibatch.</param>
    /// <param name="staleness">Clocks between the pull's clock - 1 and the slowest worker's clock.</param>
    /// <param name="at">Time since the start of training.</param>
    public void Record(int iteration, double lossSum, int examples, long staleness, TimeSpan at)
    {
        int i = iteration - 1;
        lock (_lock)
        {
            _lossSum[i] += lossSum;
            _examples[i] += examples;
            _stalenessSum[i] += staleness;
            _reported[i]++;
            if (at > _done[i]) _done[i] = at;
        }
    }

    /// <summary>Iteration <paramref name="iteration"/> (1-based); read it after the workers are done.</summary>
    public IterationRow this[int iteration]
    {
        get
        {
            int i = iteration - 1;
            lock (_lock)
            {
                return new IterationRow(_lossSum[i] / Math.Max(1, _examples[i]), (double)_stalenessSum[i] / Math.Max(1, _reported[i]), _done[i]);
            }
        }
    }
}

/// <summary>What one worker did over a run.</summary>
/// <param name="Worker">Worker index, 0-based.</param>
/// <param name="PullWait">Time spent in pulls: the round trip, plus under sequential or bounded consistency the wait for slower workers.</param>
/// <param name="Compute">Simulated compute time (see <see cref="StragglerModel"/>).</param>
/// <param name="MaxStaleness">The most clocks the slowest worker was behind at any of its pulls.</param>
/// <param name="Finished">When it ended its last iteration, from the start of training.</param>
internal readonly record struct WorkerTotals(int Worker, TimeSpan PullWait, TimeSpan Compute, long MaxStaleness, TimeSpan Finished);
