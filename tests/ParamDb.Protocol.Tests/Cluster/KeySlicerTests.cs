using ParamDb.Protocol.Cluster;

namespace ParamDb.Protocol.Tests.Cluster;

/// <summary>The slicer against a naive per-key reference: assignment, scatter, gather and dense ranges.</summary>
public sealed class KeySlicerTests
{
    private static readonly ulong Table = Ring.NameHash("embeddings");

    public static TheoryData<int, int, ulong, ulong> KeySets => new()
    {
        // nodes, key count, lowest key, span the keys are drawn from
        { 3, 0, 0, 1UL << 40 },
        { 3, 1, 0, 1UL << 40 },
        { 3, 2, 0, 1UL << 40 },
        { 5, 1_000, 0, 1UL << 40 },    // sparse: about one key per block
        { 5, 5_000, 0, 1UL << 20 },    // dense: 20 keys per block over 256 blocks
        { 5, 3_000, 0, 4096 },         // every key in one block
        { 4, 2_000, ulong.MaxValue - (1UL << 22) + 1, 1UL << 22 }, // the top end, up to 2^64 − 1
        { 1, 500, 0, 1UL << 30 },
        { 300, 5_000, 0, 1UL << 36 },  // more nodes than the stack cursor holds: the pooled path
    };

    [Theory]
    [MemberData(nameof(KeySets))]
    public void Assign_MatchesAPerKeyLookup(int nodes, int count, ulong low, ulong span)
    {
        var ring = MakeRing(nodes);
        ulong[] keys = SortedKeys(count, low, span, seed: count + nodes);
        var nodeOfKey = new int[count + 3];
        var counts = new int[nodes + 2];
        counts.AsSpan().Fill(-7);
        int used = KeySlicer.Assign(ring, Table, keys, nodeOfKey, counts);
        var expected = new int[nodes];
        for (int i = 0; i < count; i++)
        {
            int primary = ring.PrimaryOf(Ring.Position(Table, keys[i]));
            Assert.Equal(primary, nodeOfKey[i]);
            expected[primary]++;
        }
        Assert.Equal(expected, counts[..nodes]);
        Assert.Equal(expected.Count(c => c > 0), used);
    }

    [Theory]
    [MemberData(nameof(KeySets))]
    public void ScatterThenGather_SlicesAreAscendingAndRowsComeBack(int nodes, int count, ulong low, ulong span)
    {
        const int dim = 3;
        var ring = MakeRing(nodes);
        ulong[] keys = SortedKeys(count, low, span, seed: count * 7 + nodes);
        var rows = new float[count * dim];
        for (int i = 0; i < rows.Length; i++) rows[i] = i + 0.5f;
        var nodeOfKey = new int[count];
        var counts = new int[nodes];
        KeySlicer.Assign(ring, Table, keys, nodeOfKey, counts);
        var offsets = new int[nodes];
        Assert.Equal(count, KeySlicer.Offsets(counts, offsets));

        var sliceKeys = new ulong[count];
        var sliceRows = new float[count * dim];
        KeySlicer.Scatter(keys, rows, dim, nodeOfKey, offsets, sliceKeys, sliceRows);
        var keysOnly = new ulong[count];
        KeySlicer.Scatter(keys, nodeOfKey, offsets, keysOnly);
        Assert.Equal(sliceKeys, keysOnly);

        var rowOf = new Dictionary<ulong, int>();
        for (int i = 0; i < count; i++) rowOf[keys[i]] = i;
        for (int n = 0; n < nodes; n++)
        {
            ulong[] slice = sliceKeys[offsets[n]..(offsets[n] + counts[n])];
            // The reference: node n's keys in key order, each with its own row.
            Assert.Equal(keys.Where((k, i) => nodeOfKey[i] == n), slice);
            for (int j = 0; j < slice.Length; j++)
            {
                if (j > 0) Assert.True(slice[j - 1] < slice[j]);
                Assert.Equal(rows.AsSpan(rowOf[slice[j]] * dim, dim).ToArray(), sliceRows.AsSpan((offsets[n] + j) * dim, dim).ToArray());
            }
        }

        var back = new float[count * dim];
        KeySlicer.Gather(nodeOfKey, offsets, sliceRows, dim, back);
        Assert.Equal(rows, back);
    }

    [Fact]
    public void Assign_RejectsKeysNotStrictlyAscending()
    {
        var ring = MakeRing(3);
        var nodeOfKey = new int[3];
        var counts = new int[3];
        Assert.Throws<ArgumentException>(() => KeySlicer.Assign(ring, Table, [1, 2, 2], nodeOfKey, counts));
        Assert.Throws<ArgumentException>(() => KeySlicer.Assign(ring, Table, [1, 1UL << 40, 5], nodeOfKey, counts));
        Assert.Throws<ArgumentException>(() => KeySlicer.Assign(ring, Table, [1, 2, 3], new int[2], counts));
        Assert.Throws<ArgumentException>(() => KeySlicer.Assign(ring, Table, [1, 2, 3], nodeOfKey, new int[2]));
    }

    public static TheoryData<int, ulong, int> Ranges => new()
    {
        { 3, 0, 0 },
        { 3, 0, 1 },
        { 3, 4095, 2 },                  // one key each side of a block boundary
        { 3, 4096, 4096 },               // exactly one block
        { 5, 12_345, 1_000_000 },        // 245 blocks
        { 5, 1UL << 40, 1 << 22 },       // 1,024 blocks
        { 4, ulong.MaxValue - 50_000, 50_001 }, // ends at 2^64 − 1
        { 4, ulong.MaxValue, 1 },
        { 1, 7, 100_000 },
        { 300, 0, 1 << 21 },
    };

    [Theory]
    [MemberData(nameof(Ranges))]
    public void SliceRange_MatchesAPerKeyLookup(int nodes, ulong first, int count)
    {
        var ring = MakeRing(nodes);
        NodeRange[] runs = KeySlicer.SliceRange(ring, Table, first, count);

        // The reference: each key's primary, consecutive keys of one node merged into a run.
        var expected = new List<NodeRange>();
        for (int i = 0; i < count; i++)
        {
            ulong key = first + (ulong)i;
            int node = ring.PrimaryOf(Ring.Position(Table, key));
            if (expected.Count > 0 && expected[^1].Node == node) expected[^1] = expected[^1] with { Count = expected[^1].Count + 1 };
            else expected.Add(new NodeRange(node, key, 1));
        }
        Assert.Equal(expected, runs);
        Assert.True(runs.Length <= KeySlicer.MaxRanges(first, count));
        for (int r = 1; r < runs.Length; r++)
        {
            Assert.NotEqual(runs[r - 1].Node, runs[r].Node);
            Assert.Equal(0UL, runs[r].First % 4096);
        }
    }

    [Fact]
    public void SliceRange_RejectsARangePastTheTopAndAShortDestination()
    {
        var ring = MakeRing(3);
        Assert.Throws<ArgumentOutOfRangeException>(() => KeySlicer.SliceRange(ring, Table, ulong.MaxValue, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => KeySlicer.SliceRange(ring, Table, 0, -1));
        Assert.Equal(3, KeySlicer.MaxRanges(4095, 4098));
        Assert.Throws<ArgumentException>(() => KeySlicer.SliceRange(ring, Table, 4095, 4098, new NodeRange[2]));
    }

    private static ClusterRing MakeRing(int nodes)
    {
        var names = new string[nodes];
        for (int n = 0; n < nodes; n++) names[n] = "node-" + n;
        return new ClusterRing(1, 2, nodes > 100 ? 4 : 64, names);
    }

    private static ulong[] SortedKeys(int count, ulong low, ulong span, int seed)
    {
        var random = new Random(seed);
        var keys = new SortedSet<ulong>();
        while (keys.Count < count) keys.Add(low + (ulong)random.NextInt64((long)Math.Min(span, long.MaxValue)));
        ulong[] sorted = [.. keys];
        if (count > 1 && low + span - 1 == ulong.MaxValue) sorted[^1] = ulong.MaxValue; // the very top key too
        return sorted;
    }
}
