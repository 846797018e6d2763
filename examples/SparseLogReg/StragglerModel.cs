namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// Simulated compute time per worker and iteration, standing in for heterogeneous machines. The real gradient of a
/// 500-example batch takes about a millisecond, and 4 workers plus the server share 2 cores here, so without this the
/// run would measure CPU contention rather than the thing the paper is about: a synchronous iteration lasts as long
/// as its slowest worker. Each iteration a worker "computes" for <see cref="BaseCompute"/> ± 20 %, and now and then
/// it is a straggler, 3–5× slower: every machine is busy in 10 % of its iterations, and the last one is a flaky
/// machine, busy in 25 %. The delay is a pure function of (seed, worker, iteration), so every consistency mode faces
/// exactly the same stragglers.
/// </summary>
internal sealed class StragglerModel
{
    /// <summary>Chance that an ordinary worker straggles in an iteration.</summary>
    public const double StraggleChance = 0.10;

    /// <summary>Chance that the flaky (last) worker straggles in an iteration.</summary>
    public const double FlakyStraggleChance = 0.25;

    /// <summary>A straggling iteration takes this many times the normal compute time, at least …</summary>
    public const double MinSlowdown = 3;

    /// <summary>… and at most.</summary>
    public const double MaxSlowdown = 5;

    private const ulong DelayStream = 0x5_0000_0000;
    private readonly ulong _seed;
    private readonly int _workers;

    /// <summary>A model for <paramref name="workers"/> workers whose normal iteration takes <paramref name="baseCompute"/>.</summary>
    public StragglerModel(ulong seed, int workers, TimeSpan baseCompute)
    {
        _seed = seed;
        _workers = workers;
        BaseCompute = baseCompute;
    }

    /// <summary>Compute time of a normal iteration, before the ±20 % jitter.</summary>
    public TimeSpan BaseCompute { get; }

    /// <summary>The straggle chance of <paramref name="worker"/>.</summary>
    public double ChanceOf(int worker) => worker == _workers - 1 ? FlakyStraggleChance : StraggleChance;

    /// <summary>How long <paramref name="worker"/> computes in <paramref name="iteration"/> (1-based).</summary>
    public TimeSpan ComputeTime(int worker, int iteration)
    {
        var rng = new Rng(_seed, DelayStream + (ulong)worker * 1_000_003 + (ulong)iteration);
        double factor = rng.NextDouble(0.8, 1.2);
        if (rng.NextDouble() < ChanceOf(worker)) factor *= rng.NextDouble(MinSlowdown, MaxSlowdown);
        return BaseCompute * factor;
    }
}
