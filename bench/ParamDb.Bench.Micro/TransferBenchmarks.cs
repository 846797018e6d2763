using System.Buffers;
using BenchmarkDotNet.Attributes;
using ParamDb.Protocol;
using ParamDb.Storage;
using ParamDb.Storage.Transfer;

namespace ParamDb.Bench.Micro;

/// <summary>
/// Whole-record transfer in the store alone (docs/replication.md): what replication and catch-up will pay for the
/// store's part. The W-sparse batch (10,000 random rows of 10 M × 64, add) read back as whole records range by
/// range and written again, beside a push of the same rows; and a copy of every range of a 200,000-row table.
/// </summary>
[MemoryDiagnoser]
public class TransferBenchmarks
{
    private const int SparseKeys = 10_000, Dim = 64, TableRows = 200_000;

    private string _directory = "";
    private ParamStore _store = null!;
    private TableHandle _table = null!;
    private ulong[] _keys = [];
    private float[] _values = [];
    private (ulong Token, ulong[] Keys)[] _byRange = [];
    private byte[][] _batches = [];
    private byte[] _joined = [];
    private readonly ArrayBufferWriter<byte> _buffer = new(4 << 20);

    /// <summary>With and without the write-ahead log: a batch written is one log record, and records cost per record.</summary>
    [Params(DurabilityMode.Wal, DurabilityMode.Checkpoint)]
    public DurabilityMode Durability { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "paramdb-micro-" + Guid.NewGuid().ToString("N"));
        _store = ParamStore.Open(new StoreOptions { DataDirectory = _directory, MemoryBytes = 2L << 30, Durability = Durability });
        if (!new TableSchema { Dim = Dim }.TryNormalize(out var schema, out var error)) throw new InvalidOperationException(error.Detail);
        _table = _store.AddTable(_store.NextTableId, "t", schema);

        var rng = new Random(42);
        var all = new SortedSet<ulong>();
        while (all.Count < TableRows) all.Add((ulong)rng.NextInt64(10_000_000));
        ulong[] rows = [.. all];
        _store.Push(_table, rows, new float[rows.Length * Dim]);
        _keys = [.. rows.OrderBy(_ => rng.Next()).Take(SparseKeys).Order()];
        _values = new float[SparseKeys * Dim];
        for (int i = 0; i < _values.Length; i++) _values[i] = (float)(rng.NextDouble() * 0.02 - 0.01);

        Ring ring = _store.Ranges;
        _byRange = [.. _keys.GroupBy(k => ring.Tokens[ring.RangeOf(_table.RingHash, k)]).Select(g => (g.Key, g.ToArray()))];
        _batches = [.. _byRange.Select(r =>
        {
            var writer = new ArrayBufferWriter<byte>();
            _store.ReadRecords(_table, r.Token, r.Keys, writer);
            return writer.WrittenSpan.ToArray();
        })];
        _joined = [.. _batches.SelectMany(b => b)];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The baseline: the same 10,000 rows pushed.</summary>
    [Benchmark(Baseline = true)]
    public void PushSparse() => _store.Push(_table, _keys, _values);

    /// <summary>The 10,000 rows read back as whole records, one batch per range (what a primary ships).</summary>
    [Benchmark]
    public int ReadRecordsSparse()
    {
        int bytes = 0;
        foreach (var (token, keys) in _byRange)
        {
            _buffer.ResetWrittenCount();
            bytes += _store.ReadRecords(_table, token, keys, _buffer);
        }
        return bytes;
    }

    /// <summary>The same batches written again (what a backup does; idempotent, so it can repeat).</summary>
    [Benchmark]
    public void ApplyRecordsSparse()
    {
        Task last = Task.CompletedTask;
        foreach (byte[] batch in _batches) last = _store.ApplyRecords(_table, batch);
        last.GetAwaiter().GetResult();
    }

    /// <summary>The same 64 batches written in one call: one log record, one push-gate section (what a replication message should be).</summary>
    [Benchmark]
    public void ApplyRecordsSparseInOneCall() => _store.ApplyRecords(_table, _joined).GetAwaiter().GetResult();

    /// <summary>Every range of the 200,000-row table copied in one pass over the log.</summary>
    [Benchmark]
    public long CopyEveryRangeInOnePass()
    {
        long bytes = 0;
        using RangeCopy copy = _store.CopyRanges(_table, _store.Ranges.Tokens.ToArray());
        while (copy.TryReadNext(out ReadOnlyMemory<byte> batch)) bytes += batch.Length;
        return bytes;
    }

    /// <summary>Every range of the 200,000-row table copied one range at a time (one log scan per range).</summary>
    [Benchmark]
    public long CopyEveryRange()
    {
        long bytes = 0;
        foreach (ulong token in _store.Ranges.Tokens)
        {
            using RangeCopy copy = _store.CopyRange(_table, token);
            while (copy.TryReadNext(out ReadOnlyMemory<byte> batch)) bytes += batch.Length;
        }
        return bytes;
    }
}
