using BenchmarkDotNet.Attributes;
using ParamDb.Protocol;
using ParamDb.Storage;

namespace ParamDb.Bench.Micro;

/// <summary>
/// The store alone, no HTTP: the W-dense and W-sparse batches pushed (add updater) and pulled through
/// <see cref="ParamStore"/>, warm and in memory. What a node could do if the wire cost nothing, so the
/// end-to-end figures can be read against it.
/// </summary>
[MemoryDiagnoser]
public class StoreBenchmarks
{
    private const int DenseKeys = 4096, DenseDim = 256, SparseKeys = 10_000, SparseDim = 64;

    private string _directory = "";
    private ParamStore _store = null!;
    private TableHandle _dense = null!, _sparse = null!;
    private ulong[] _denseKeys = [], _sparseKeys = [];
    private float[] _denseValues = [], _sparseValues = [], _destination = [];

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "paramdb-micro-" + Guid.NewGuid().ToString("N"));
        _store = ParamStore.Open(new StoreOptions { DataDirectory = _directory, MemoryBytes = 2L << 30 });
        _dense = Create("dense", DenseDim);
        _sparse = Create("sparse", SparseDim);

        var rng = new Random(42);
        _denseKeys = new ulong[DenseKeys];
        for (int i = 0; i < DenseKeys; i++) _denseKeys[i] = (ulong)i;
        var set = new HashSet<ulong>(SparseKeys);
        while (set.Count < SparseKeys) set.Add((ulong)rng.NextInt64(10_000_000));
        _sparseKeys = new ulong[SparseKeys];
        set.CopyTo(_sparseKeys);
        Array.Sort(_sparseKeys);
        _denseValues = Values(rng, DenseKeys * DenseDim);
        _sparseValues = Values(rng, SparseKeys * SparseDim);
        _destination = new float[DenseKeys * DenseDim];

        // Rows that exist, so every measured push is an in-place update and every pull a read.
        _store.Push(_dense, _denseKeys, _denseValues);
        _store.Push(_sparse, _sparseKeys, _sparseValues);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>4,096 rows × 256 floats (4 MiB).</summary>
    [Benchmark]
    public void PushDense() => _store.Push(_dense, _denseKeys, _denseValues);

    [Benchmark]
    public void PullDense() => _store.Pull(_dense, _denseKeys, _destination);

    /// <summary>10,000 random rows of 10 M × 64 floats (2.56 MB).</summary>
    [Benchmark]
    public void PushSparse() => _store.Push(_sparse, _sparseKeys, _sparseValues);

    [Benchmark]
    public void PullSparse() => _store.Pull(_sparse, _sparseKeys, _destination.AsSpan(0, SparseKeys * SparseDim));

    private TableHandle Create(string name, int dim)
    {
        if (!new TableSchema { Dim = dim }.TryNormalize(out var schema, out var error)) throw new InvalidOperationException(error.Detail);
        return _store.AddTable(_store.NextTableId, name, schema);
    }

    private static float[] Values(Random rng, int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(rng.NextDouble() * 0.02 - 0.01);
        return values;
    }
}
