namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// Draws feature ids 0 … n-1 with P(id = r) ∝ (r + 1)^-s: a few ids are in almost every example (hot keys, pulled
/// and pushed by every worker in every iteration) and most are rare, as in click logs and text.
/// </summary>
internal sealed class ZipfSampler
{
    // Cumulative probabilities; a draw is one binary search (18 steps for 200,000 ids).
    private readonly double[] _cdf;

    /// <summary>Precomputes the distribution over <paramref name="count"/> ids with exponent <paramref name="exponent"/>.</summary>
    public ZipfSampler(int count, double exponent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        _cdf = new double[count];
        double sum = 0;
        for (int r = 0; r < count; r++)
        {
            sum += Math.Pow(r + 1, -exponent);
            _cdf[r] = sum;
        }
        for (int r = 0; r < count; r++) _cdf[r] /= sum;
        _cdf[^1] = 1.0; // rounding must not leave a gap at the top
    }

    /// <summary>Number of distinct ids.</summary>
    public int Count => _cdf.Length;

    /// <summary>Probability of the most frequent id, for the description line.</summary>
    public double TopProbability => _cdf[0];

    /// <summary>One id.</summary>
    public uint Next(ref Rng rng)
    {
        int i = Array.BinarySearch(_cdf, rng.NextDouble());
        if (i < 0) i = ~i;
        return (uint)Math.Min(i, _cdf.Length - 1);
    }
}
