namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// A set of examples and the buffers a worker needs for them: the sorted unique keys they touch (what is pulled and
/// pushed: the server refuses unsorted or repeated keys), the pulled weights and the gradient, one float per key, and
/// for every feature occurrence its position in the keys. One instance per worker, reused every iteration; the
/// buffers must stay untouched while a pull or push of them is in flight, which awaiting each call ensures.
/// </summary>
internal sealed class Minibatch
{
    private ulong[] _keys = [];
    private float[] _weights = [];
    private float[] _gradient = [];
    private int[] _positions = [];
    private int[] _examples = [];
    private int _occurrences;

    /// <summary>The examples' data set.</summary>
    public SparseDataset Data { get; private set; } = null!;

    /// <summary>Number of examples.</summary>
    public int Size { get; private set; }

    /// <summary>Number of distinct keys.</summary>
    public int KeyCount { get; private set; }

    /// <summary>The distinct keys, strictly ascending.</summary>
    public Memory<ulong> Keys => _keys.AsMemory(0, KeyCount);

    /// <summary>The weights of <see cref="Keys"/>: the pull's destination.</summary>
    public Memory<float> Weights => _weights.AsMemory(0, KeyCount);

    /// <summary>The gradient of the mean loss with respect to <see cref="Weights"/>: what is pushed.</summary>
    public Memory<float> Gradient => _gradient.AsMemory(0, KeyCount);

    /// <summary>Example ids, in order.</summary>
    public ReadOnlySpan<int> Examples => _examples.AsSpan(0, Size);

    /// <summary>For each feature occurrence of <see cref="Examples"/>, in order, its index in <see cref="Keys"/>.</summary>
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, _occurrences);

    /// <summary>
    /// Takes examples first, first+1, … (wrapping around the data set) and collects their keys. This is part of a
    /// worker's real compute: a sort of ~17,000 ids for 500 examples.
    /// </summary>
    public void Fill(SparseDataset data, int first, int size)
    {
        Data = data;
        Size = size;
        if (_examples.Length < size) _examples = new int[size];
        int occurrences = 0;
        for (int j = 0; j < size; j++)
        {
            int i = (int)((first + (long)j) % data.Count);
            _examples[j] = i;
            occurrences += data.Features(i).Length;
        }
        // Buffers only grow: batches differ by a few hundred occurrences, and a worker keeps one Minibatch.
        if (_keys.Length < occurrences)
        {
            _keys = new ulong[occurrences];
            _weights = new float[occurrences];
            _gradient = new float[occurrences];
            _positions = new int[occurrences];
        }
        _occurrences = occurrences;

        // Every occurrence, then sort and drop repeats: the hot keys occur in nearly every example.
        int n = 0;
        foreach (int i in Examples)
        {
            foreach (uint id in data.Features(i)) _keys[n++] = id;
        }
        Array.Sort(_keys, 0, n);
        int unique = 0;
        for (int k = 0; k < n; k++)
        {
            if (unique == 0 || _keys[k] != _keys[unique - 1]) _keys[unique++] = _keys[k];
        }
        KeyCount = unique;

        n = 0;
        foreach (int i in Examples)
        {
            foreach (uint id in data.Features(i)) _positions[n++] = Array.BinarySearch(_keys, 0, unique, (ulong)id);
        }
    }
}
