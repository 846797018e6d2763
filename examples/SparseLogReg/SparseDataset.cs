namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// Examples with binary features in compressed-row form: example i's active feature ids are
/// <c>features[offsets[i] .. offsets[i+1]]</c>, sorted and unique, and its label is 0 or 1.
/// </summary>
internal sealed class SparseDataset
{
    private readonly int[] _offsets;
    private readonly uint[] _features;
    private readonly byte[] _labels;

    /// <summary>Wraps arrays built by <see cref="SyntheticProblem"/>; <paramref name="offsets"/> has one entry more than <paramref name="labels"/>.</summary>
    public SparseDataset(int[] offsets, uint[] features, byte[] labels)
    {
        if (offsets.Length != labels.Length + 1 || offsets[^1] != features.Length)
            throw new ArgumentException("offsets must have labels.Length + 1 entries and end at features.Length.");
        _offsets = offsets;
        _features = features;
        _labels = labels;
    }

    /// <summary>Number of examples.</summary>
    public int Count => _labels.Length;

    /// <summary>Active features over all examples.</summary>
    public long ActiveFeatures => _features.Length;

    /// <summary>Example <paramref name="i"/>'s active feature ids, ascending.</summary>
    public ReadOnlySpan<uint> Features(int i) => _features.AsSpan(_offsets[i], _offsets[i + 1] - _offsets[i]);

    /// <summary>Example <paramref name="i"/>'s label, 0 or 1.</summary>
    public int Label(int i) => _labels[i];
}
