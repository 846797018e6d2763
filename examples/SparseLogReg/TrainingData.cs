using System.Diagnostics;

namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// Everything generated before training: the problem (hidden weights), one shard per worker, and the held-out
/// examples with their keys, ready for the final pull.
/// </summary>
internal sealed class TrainingData
{
    private TrainingData(SyntheticProblem problem, SparseDataset[] shards, Minibatch heldOut, double floorLoss, int keysPerBatch, TimeSpan generation)
    {
        Problem = problem;
        Shards = shards;
        HeldOut = heldOut;
        FloorLoss = floorLoss;
        KeysPerBatch = keysPerBatch;
        Generation = generation;
    }

    /// <summary>The hidden model.</summary>
    public SyntheticProblem Problem { get; }

    /// <summary>Worker i trains on Shards[i].</summary>
    public SparseDataset[] Shards { get; }

    /// <summary>The held-out examples as one batch; its weights buffer is the final pull's destination.</summary>
    public Minibatch HeldOut { get; }

    /// <summary>Held-out log loss of the hidden weights: the floor no training run beats on average.</summary>
    public double FloorLoss { get; }

    /// <summary>Distinct keys in the first minibatch of shard 0: the size of a typical pull and push.</summary>
    public int KeysPerBatch { get; }

    /// <summary>How long generating took.</summary>
    public TimeSpan Generation { get; }

    /// <summary>Generates the data <paramref name="options"/> describe; about a second for the defaults.</summary>
    public static TrainingData Generate(ExampleOptions options)
    {
        var clock = Stopwatch.StartNew();
        var problem = new SyntheticProblem(options.Features, options.Seed);
        var shards = new SparseDataset[options.Workers];
        for (int i = 0; i < shards.Length; i++) shards[i] = problem.Shard(i, options.Examples);
        var heldOut = new Minibatch();
        heldOut.Fill(problem.HeldOut(options.HeldOut), 0, options.HeldOut);

        // Put the hidden weights in the held-out batch for a moment to measure the floor; the final pulls overwrite them.
        Span<float> weights = heldOut.Weights.Span;
        ReadOnlySpan<ulong> keys = heldOut.Keys.Span;
        for (int k = 0; k < keys.Length; k++) weights[k] = problem.TrueWeights[keys[k]];
        double floor = Logistic.MeanLoss(heldOut);

        var sample = new Minibatch();
        sample.Fill(shards[0], 0, options.Batch);
        return new TrainingData(problem, shards, heldOut, floor, sample.KeyCount, clock.Elapsed);
    }
}
