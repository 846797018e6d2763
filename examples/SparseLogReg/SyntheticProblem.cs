namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// A logistic-regression problem with a known answer: hidden weights over <see cref="Features"/> ids, and examples
/// of 20–50 active binary features drawn from a Zipf law, labelled by sampling y ~ Bernoulli(sigmoid(w_true · x)).
/// Everything is a function of the seed: each shard and the held-out set have their own random stream, so a shard
/// does not change when the number of workers or iterations does.
/// </summary>
internal sealed class SyntheticProblem
{
    /// <summary>Zipf exponent of feature frequencies: the top id is in nearly every example, half the ids in almost none.</summary>
    public const double ZipfExponent = 1.1;

    /// <summary>Fewest active features per example.</summary>
    public const int MinActive = 20;

    /// <summary>Most active features per example (draws of the same id collapse, so a few less on average).</summary>
    public const int MaxActive = 50;

    /// <summary>
    /// Standard deviation of each hidden weight. With ~30 active features a margin w_true · x has a standard deviation
    /// near 0.5·√30 ≈ 2.7: labels follow the features most of the time but not always (the floor loss is ~0.3, not 0).
    /// </summary>
    public const double WeightStd = 0.5;

    private const ulong WeightStream = 0xFFFF_FFFF, HeldOutStream = 0xFFFF_FFFE;

    private readonly ulong _seed;
    private readonly ZipfSampler _zipf;

    /// <summary>Draws the hidden weights of <paramref name="features"/> ids from <paramref name="seed"/>.</summary>
    public SyntheticProblem(int features, ulong seed)
    {
        _seed = seed;
        _zipf = new ZipfSampler(features, ZipfExponent);
        TrueWeights = new float[features];
        var rng = new Rng(seed, WeightStream);
        for (int j = 0; j < features; j++) TrueWeights[j] = (float)(WeightStd * rng.NextNormal());
    }

    /// <summary>Number of feature ids, which are also the table's keys 0 … Features-1.</summary>
    public int Features => _zipf.Count;

    /// <summary>How often the hottest key appears among feature draws.</summary>
    public double TopKeyProbability => _zipf.TopProbability;

    /// <summary>The hidden weights that generated the labels.</summary>
    public float[] TrueWeights { get; }

    /// <summary>Worker <paramref name="worker"/>'s training shard.</summary>
    public SparseDataset Shard(int worker, int count) => Generate(count, (ulong)worker);

    /// <summary>Examples no worker trains on, for the final loss.</summary>
    public SparseDataset HeldOut(int count) => Generate(count, HeldOutStream);

    private SparseDataset Generate(int count, ulong stream)
    {
        var rng = new Rng(_seed, stream);
        var offsets = new int[count + 1];
        var labels = new byte[count];
        var features = new List<uint>(count * (MinActive + MaxActive) / 2);
        Span<uint> draws = stackalloc uint[MaxActive];
        for (int i = 0; i < count; i++)
        {
            int active = rng.NextInt(MinActive, MaxActive + 1);
            for (int d = 0; d < active; d++) draws[d] = _zipf.Next(ref rng);
            Span<uint> example = draws[..active];
            example.Sort();
            double margin = 0;
            uint previous = uint.MaxValue;
            foreach (uint id in example)
            {
                if (id == previous) continue; // binary features: a repeated draw is the same feature
                previous = id;
                features.Add(id);
                margin += TrueWeights[id];
            }
            labels[i] = rng.NextDouble() < Logistic.Sigmoid(margin) ? (byte)1 : (byte)0;
            offsets[i + 1] = features.Count;
        }
        return new SparseDataset(offsets, features.ToArray(), labels);
    }
}
