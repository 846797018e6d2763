using BenchmarkDotNet.Attributes;
using ParamDb.Protocol;

namespace ParamDb.Bench.Micro;

/// <summary>
/// Parsing and writing one KV block of 10,000 sorted random keys (the W-sparse request): parsing is a
/// header check plus one pass over the keys; writing is two block copies. Neither may allocate.
/// </summary>
[MemoryDiagnoser]
public class KvBlockBenchmarks
{
    private const int Keys = 10_000;

    private ulong[] _keys = [];
    private float[] _values = [];
    private byte[] _push = [], _pull = [], _range = [];

    /// <summary>Floats per row: 64 as in W-sparse, 256 as in W-dense.</summary>
    [Params(64, 256)]
    public int Dim { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        var set = new HashSet<ulong>(Keys);
        while (set.Count < Keys) set.Add((ulong)rng.NextInt64(10_000_000));
        _keys = new ulong[Keys];
        set.CopyTo(_keys);
        Array.Sort(_keys);
        _values = new float[Keys * Dim];
        for (int i = 0; i < _values.Length; i++) _values[i] = (float)rng.NextDouble();

        _push = new byte[KvBlockWriter.SizeOf(false, Keys, Dim, values: true)];
        KvBlockWriter.Write(_push, _keys, _values, Dim, withValues: true);
        _pull = new byte[KvBlockWriter.SizeOf(false, Keys, Dim, values: false)];
        KvBlockWriter.Write(_pull, _keys, default, Dim, withValues: false);
        _range = new byte[KvBlockWriter.SizeOf(true, Keys, Dim, values: true)];
        KvBlockWriter.WriteRange(_range, 0, Keys, _values, Dim, withValues: true);
    }

    [Benchmark]
    public int ParsePush() => KvBlock.TryParse(_push, KvExpect.Values, 1 << 20, out var block, out _) ? block.Count : -1;

    [Benchmark]
    public int ParsePullRequest() => KvBlock.TryParse(_pull, KvExpect.NoValues, 1 << 20, out var block, out _) ? block.Count : -1;

    [Benchmark]
    public int ParseRange() => KvBlock.TryParse(_range, KvExpect.Values, 1 << 20, out var block, out _) ? block.Count : -1;

    [Benchmark]
    public int WritePush() => KvBlockWriter.Write(_push, _keys, _values, Dim, withValues: true);

    [Benchmark]
    public int WriteRange() => KvBlockWriter.WriteRange(_range, 0, Keys, _values, Dim, withValues: true);
}
