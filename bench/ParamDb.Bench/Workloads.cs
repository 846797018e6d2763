using ParamDb.Client;
using ParamDb.Protocol;

namespace ParamDb.Bench;

/// <summary>One measured direction of a workload: its loops and the amount of data each request moves.</summary>
internal sealed record Phase(string Workload, string Op, BenchOp[] Loops, int Warmup, int Iterations, long PayloadBytes, int Keys);

/// <summary>
/// The workloads of the benchmark issue. Each creates its own <c>bench-</c> table (add updater), prepares
/// every request body before measuring, and yields its phases in order: push before pull, so pulls read rows
/// that exist. With <paramref name="streams"/> the loops are stream loops (<c>--stream</c>), otherwise one
/// REST loop per connection.
/// </summary>
internal sealed class Workloads(BenchOptions options, ParamDbClient[] dbs, RawTransport raw, StreamLoops? streams, List<string> createdTables)
{
    public const int DenseKeys = 4096, DenseDim = 256;            // 1,048,576 floats, 4 MiB, per request
    public const int SparseDim = 64;                              // keys out of 10,000,000: 10,000 unless --sparse-keys
    public const ulong SparseKeySpace = 10_000_000;
    public const int SmallDim = 64, SmallRows = 1024;
    private const int SparseSetsPerLoop = 4;                      // distinct key sets a loop rotates through

    /// <summary>The node at --url (the first of --shards).</summary>
    private ParamDbClient db => dbs[0];

    /// <summary>Keys per W-sparse request: 10,000, or --sparse-keys.</summary>
    private int SparseKeys => options.SparseKeys;

    /// <summary>Concurrent request loops: one per REST connection, or in-flight × streams.</summary>
    private int Loops => streams?.Count ?? options.Connections;

    /// <summary>Loops that share key sets: a stream's loops share them, REST loops do not.</summary>
    private int KeyGroupOf(int loop) => streams?.StreamOf(loop) ?? loop;

    /// <summary>The workload's name(s) as reported, with a setup step that returns its phases.</summary>
    public IEnumerable<(string Name, Func<Task<Phase[]>> Setup)> Selected()
    {
        foreach (string w in options.Workloads)
        {
            switch (w)
            {
                case "dense":
                    if (options.DenseRange) yield return ("dense-range", () => DenseAsync(range: true));
                    if (options.DenseExplicit) yield return ("dense-explicit", () => DenseAsync(range: false));
                    break;
                case "sparse":
                    yield return ("sparse", SparseAsync);
                    break;
                case "small":
                    yield return ("small", SmallAsync);
                    break;
            }
        }
    }

    /// <summary>W-dense: 4,096 keys × 256 floats in one request, as a dense range or as explicit keys.</summary>
    private async Task<Phase[]> DenseAsync(bool range)
    {
        string name = range ? "dense-range" : "dense-explicit";
        string table = await CreateTableAsync(name, DenseDim, maxKey: null);
        ulong[] keys = Sequence(0, DenseKeys);
        float[] values = Values(DenseKeys * DenseDim, seed: 1);
        long payload = 4L * DenseKeys * DenseDim;

        BenchOp[] push = new BenchOp[Loops], pull = new BenchOp[Loops];
        byte[] pushBlock = Block(range, keys, values, DenseDim, withValues: true);
        byte[] pullBlock = Block(range, keys, default, DenseDim, withValues: false);
        byte[] pushBody = raw.Encode(pushBlock), pullBody = raw.Encode(pullBlock);
        int replyLength = (int)KvBlockWriter.SizeOf(range, DenseKeys, DenseDim, values: true);
        for (int l = 0; l < Loops; l++)
        {
            if (streams is not null)
            {
                push[l] = streams.Push(l, table, [keys], range ? 0UL : null, values, DenseDim, [pushBlock]);
                pull[l] = streams.Pull(l, table, [keys], range ? 0UL : null, DenseKeys, DenseDim, [pullBlock], replyLength);
                continue;
            }
            push[l] = options.ViaClient
                ? new ClientPush(dbs, table, [keys], range ? 0UL : null, values, DenseDim, DenseKeys)
                : new RawPush(raw, Uri(table, "push"), [pushBody]);
            pull[l] = options.ViaClient
                ? new ClientPull(dbs, table, [keys], range ? 0UL : null, DenseKeys, DenseDim, DenseKeys)
                : new RawPull(raw, Uri(table, "pull"), [pullBody], replyLength);
        }
        int iterations = options.Iterations ?? 40, warmup = options.Warmup ?? 5;
        return
        [
            new Phase(name, "push", push, warmup, iterations, payload, DenseKeys),
            new Phase(name, "pull", pull, warmup, iterations, payload, DenseKeys),
        ];
    }

    /// <summary>W-sparse: 10,000 random sorted keys out of 10,000,000, dim 64.</summary>
    private async Task<Phase[]> SparseAsync()
    {
        string table = await CreateTableAsync("sparse", SparseDim, maxKey: SparseKeySpace);
        float[] values = Values(SparseKeys * SparseDim, seed: 2);
        int replyLength = (int)KvBlockWriter.SizeOf(false, SparseKeys, SparseDim, values: true);

        BenchOp[] push = new BenchOp[Loops], pull = new BenchOp[Loops];
        ulong[][] keySets = [];
        byte[][] pushBlocks = [], pullBlocks = [];
        for (int l = 0; l < Loops; l++)
        {
            int group = KeyGroupOf(l);
            if (l == 0 || group != KeyGroupOf(l - 1))
            {
                keySets = new ulong[SparseSetsPerLoop][];
                pushBlocks = new byte[SparseSetsPerLoop][];
                pullBlocks = new byte[SparseSetsPerLoop][];
                for (int s = 0; s < SparseSetsPerLoop; s++)
                {
                    keySets[s] = RandomSortedKeys(new Random(1000 + group * SparseSetsPerLoop + s), SparseKeys, SparseKeySpace);
                    if (options.ViaClient) continue;
                    pushBlocks[s] = Block(false, keySets[s], values, SparseDim, withValues: true);
                    pullBlocks[s] = Block(false, keySets[s], default, SparseDim, withValues: false);
                }
            }
            if (streams is not null)
            {
                // A stream's loops start at different sets, so concurrent requests do not all touch the same keys.
                int shift = l % SparseSetsPerLoop;
                push[l] = streams.Push(l, table, Rotate(keySets, shift), null, values, SparseDim, Rotate(pushBlocks, shift));
                pull[l] = streams.Pull(l, table, Rotate(keySets, shift), null, SparseKeys, SparseDim, Rotate(pullBlocks, shift), replyLength);
                continue;
            }
            byte[][] pushBodies = options.ViaClient ? [] : Array.ConvertAll(pushBlocks, raw.Encode);
            byte[][] pullBodies = options.ViaClient ? [] : Array.ConvertAll(pullBlocks, raw.Encode);
            push[l] = options.ViaClient
                ? new ClientPush(dbs, table, keySets, null, values, SparseDim, SparseKeySpace)
                : new RawPush(raw, Uri(table, "push"), pushBodies);
            pull[l] = options.ViaClient
                ? new ClientPull(dbs, table, keySets, null, SparseKeys, SparseDim, SparseKeySpace)
                : new RawPull(raw, Uri(table, "pull"), pullBodies, replyLength);
        }
        int iterations = options.Iterations ?? 100, warmup = options.Warmup ?? 10;
        long payload = 4L * SparseKeys * SparseDim;
        return
        [
            new Phase("sparse", "push", push, warmup, iterations, payload, SparseKeys),
            new Phase("sparse", "pull", pull, warmup, iterations, payload, SparseKeys),
        ];
    }

    /// <summary>W-small: pulls of 1 key × 64 floats, back to back; the point is latency, p50 and p99.</summary>
    private async Task<Phase[]> SmallAsync()
    {
        string table = await CreateTableAsync("small", SmallDim, maxKey: null);
        // Rows that exist, so a pull reads the store rather than computing an initial value.
        float[] rows = Values(SmallRows * SmallDim, seed: 3);
        foreach (var shard in dbs) await shard.PushRangeAsync(table, 0, rows, SmallDim);

        var keySets = new ulong[SmallRows][];
        var blocks = new byte[SmallRows][];
        for (int k = 0; k < SmallRows; k++)
        {
            // Spread over the rows in a fixed scattered order (odd stride), not sequentially.
            ulong key = (ulong)(k * 389 % SmallRows);
            keySets[k] = [key];
            blocks[k] = Block(false, keySets[k], default, SmallDim, withValues: false);
        }
        byte[][] bodies = Array.ConvertAll(blocks, raw.Encode);
        int replyLength = (int)KvBlockWriter.SizeOf(false, 1, SmallDim, values: true);
        var pull = new BenchOp[Loops];
        for (int l = 0; l < Loops; l++)
        {
            if (streams is not null)
            {
                int shift = l * SmallRows / Loops;
                pull[l] = streams.Pull(l, table, Rotate(keySets, shift), null, 1, SmallDim, Rotate(blocks, shift), replyLength);
                continue;
            }
            pull[l] = options.ViaClient
                ? new ClientPull(dbs, table, keySets, null, 1, SmallDim, SmallRows)
                : new RawPull(raw, Uri(table, "pull"), bodies, replyLength);
        }
        return [new Phase("small", "pull", pull, options.Warmup ?? 200, options.Iterations ?? 2000, 4L * SmallDim, 1)];
    }

    private async Task<string> CreateTableAsync(string workload, int dim, ulong? maxKey)
    {
        // bench-<workload>-<16 hex>: unique per run, and always a valid name.
        string name = $"bench-{workload}-{Guid.NewGuid():N}"[..(workload.Length + 23)];
        foreach (var shard in dbs) await shard.CreateTableAsync(name, new TableSchema { Dim = dim, Updater = new UpdaterSpec { Kind = UpdaterSpec.Add }, MaxKey = maxKey });
        createdTables.Add(name);
        return name;
    }

    private Uri Uri(string table, string action) => new(db.BaseAddress, $"v1/tables/{table}/{action}");

    private static byte[] Block(bool range, ulong[] keys, float[]? values, int dim, bool withValues)
    {
        var block = new byte[KvBlockWriter.SizeOf(range, keys.Length, dim, withValues)];
        if (range) KvBlockWriter.WriteRange(block, keys[0], keys.Length, values, dim, withValues);
        else KvBlockWriter.Write(block, keys, values, dim, withValues);
        return block;
    }

    /// <summary>The same items, starting at <paramref name="shift"/>.</summary>
    private static T[] Rotate<T>(T[] items, int shift)
    {
        var rotated = new T[items.Length];
        for (int i = 0; i < items.Length; i++) rotated[i] = items[(i + shift) % items.Length];
        return rotated;
    }

    private static ulong[] Sequence(ulong first, int count)
    {
        var keys = new ulong[count];
        for (int i = 0; i < count; i++) keys[i] = first + (ulong)i;
        return keys;
    }

    private static ulong[] RandomSortedKeys(Random rng, int count, ulong space)
    {
        var set = new HashSet<ulong>(count);
        while (set.Count < count) set.Add((ulong)rng.NextInt64((long)space));
        var keys = new ulong[count];
        set.CopyTo(keys);
        Array.Sort(keys);
        return keys;
    }

    /// <summary>Small gradient-like values in [-0.01, 0.01); a fraction <c>--zeros</c> of them exactly 0.</summary>
    private float[] Values(int count, int seed)
    {
        var rng = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
            values[i] = rng.NextDouble() < options.Zeros ? 0f : (float)(rng.NextDouble() * 0.02 - 0.01);
        return values;
    }
}
