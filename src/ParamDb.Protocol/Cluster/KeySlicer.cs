using System.Buffers;

namespace ParamDb.Protocol.Cluster;

/// <summary>A run of consecutive keys first … first+count-1 whose primary is one node.</summary>
/// <param name="Node">The primary's index in <see cref="ClusterRing.Nodes"/>.</param>
/// <param name="First">First key of the run.</param>
/// <param name="Count">Keys in the run (at least 1).</param>
public readonly record struct NodeRange(int Node, ulong First, int Count);

/// <summary>
/// Splits a request's keys into one slice per primary, so a client sends each node one KV block, and puts the
/// replies back in key order. Placement is per block of 4,096 keys (<see cref="Ring.BlockBits"/>), so the ring is
/// searched once per block, not per key: a dense pull of 2^20 keys costs 256 searches, not a million.
/// <para>
/// Layout. <see cref="Assign"/> gives each key i its node, <c>nodeOfKey[i]</c>, and each node n its count,
/// <c>counts[n]</c>. <see cref="Offsets"/> turns counts into <c>offsets[n]</c> = counts[0] + … + counts[n-1].
/// <see cref="Scatter(ReadOnlySpan{ulong}, ReadOnlySpan{float}, int, ReadOnlySpan{int}, ReadOnlySpan{int}, Span{ulong}, Span{float})"/>
/// then writes node n's keys to <c>sliceKeys[offsets[n] .. offsets[n] + counts[n]]</c> and their rows to
/// <c>sliceRows[offsets[n] × dim ..]</c>, in key order, so each slice is strictly ascending and can be handed to
/// <see cref="KvBlockWriter.Write"/> as it is. <see cref="Gather"/> reads replies laid out the same way (node n's
/// rows, in the order its keys were sent, at <c>offsets[n] × dim</c>) back into key order.
/// </para>
/// <para>
/// Buffers. Every span is the caller's: nothing is kept past a call and nothing is allocated, except a pooled
/// cursor array when a ring has more than 256 nodes. Spans may be longer than needed (rented arrays); only the
/// first keys.Length (× dim) elements are read or written; <see cref="Gather"/>, which has no keys, takes the count
/// from nodeOfKey, so slice that one to the key count. Inputs and outputs must not overlap.
/// </para>
/// </summary>
public static class KeySlicer
{
    /// <summary>
    /// Writes the primary of each key to <paramref name="nodeOfKey"/> and the number of keys of each node to
    /// <paramref name="counts"/>. Returns how many nodes got keys; 1 means the request can go to that node whole.
    /// </summary>
    /// <param name="ring">The ring of the current epoch.</param>
    /// <param name="tableHash">The table's <see cref="Ring.NameHash"/>.</param>
    /// <param name="keys">Strictly ascending, as a KV block carries them.</param>
    /// <param name="nodeOfKey">At least keys.Length; receives node indices.</param>
    /// <param name="counts">At least <see cref="ClusterRing.NodeCount"/>; its first N entries are overwritten.</param>
    /// <exception cref="ArgumentException">Keys are not strictly ascending (outputs are then partly written), or a span is too short.</exception>
    public static int Assign(ClusterRing ring, ulong tableHash, ReadOnlySpan<ulong> keys, Span<int> nodeOfKey, Span<int> counts)
    {
        ArgumentNullException.ThrowIfNull(ring);
        int n = ring.NodeCount;
        if (nodeOfKey.Length < keys.Length) throw new ArgumentException($"nodeOfKey holds {nodeOfKey.Length} entries; {keys.Length} keys need as many.", nameof(nodeOfKey));
        if (counts.Length < n) throw new ArgumentException($"counts holds {counts.Length} entries; the ring has {n} nodes.", nameof(counts));
        counts = counts[..n];
        counts.Clear();
        nodeOfKey = nodeOfKey[..keys.Length];
        int node = 0;
        ulong block = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            ulong key = keys[i];
            if (i > 0 && key <= keys[i - 1]) throw Unsorted(i, keys);
            ulong b = key >> Ring.BlockBits;
            if (i == 0 || b != block)
            {
                block = b;
                node = ring.PrimaryOf(tableHash, key);
            }
            nodeOfKey[i] = node;
            counts[node]++;
        }
        int used = 0;
        foreach (int c in counts) used += c > 0 ? 1 : 0;
        return used;
    }

    /// <summary>
    /// Writes where each node's slice starts: offsets[n] = counts[0] + … + counts[n-1], over counts.Length nodes.
    /// Returns the total, the length the slice buffers need (times dim for rows).
    /// </summary>
    /// <param name="counts">Keys per node, as <see cref="Assign"/> wrote them.</param>
    /// <param name="offsets">At least counts.Length.</param>
    public static int Offsets(ReadOnlySpan<int> counts, Span<int> offsets)
    {
        if (offsets.Length < counts.Length) throw new ArgumentException($"offsets holds {offsets.Length} entries; counts has {counts.Length}.", nameof(offsets));
        int total = 0;
        for (int n = 0; n < counts.Length; n++)
        {
            offsets[n] = total;
            total = checked(total + counts[n]);
        }
        return total;
    }

    /// <summary>
    /// Copies the keys into per-node slices: node n's keys, ascending, to sliceKeys[offsets[n] ..]. For a pull,
    /// which sends keys only.
    /// </summary>
    /// <param name="keys">The request's keys, ascending.</param>
    /// <param name="nodeOfKey">From <see cref="Assign"/>, at least keys.Length.</param>
    /// <param name="offsets">From <see cref="Offsets"/>, one per node.</param>
    /// <param name="sliceKeys">At least keys.Length.</param>
    public static void Scatter(ReadOnlySpan<ulong> keys, ReadOnlySpan<int> nodeOfKey, ReadOnlySpan<int> offsets, Span<ulong> sliceKeys) =>
        Scatter(keys, default, 0, nodeOfKey, offsets, sliceKeys, default);

    /// <summary>
    /// Copies keys and their rows into per-node slices: node n's keys, ascending, to sliceKeys[offsets[n] ..] and
    /// their rows to sliceRows[offsets[n] × dim ..]. For a push, which sends each node one block of keys and rows.
    /// </summary>
    /// <param name="keys">The request's keys, ascending.</param>
    /// <param name="rows">keys.Length × dim floats, row-major (at least); empty with dim 0 to move keys only.</param>
    /// <param name="dim">Floats per row.</param>
    /// <param name="nodeOfKey">From <see cref="Assign"/>, at least keys.Length.</param>
    /// <param name="offsets">From <see cref="Offsets"/>, one per node.</param>
    /// <param name="sliceKeys">At least keys.Length.</param>
    /// <param name="sliceRows">At least keys.Length × dim.</param>
    public static void Scatter(
        ReadOnlySpan<ulong> keys, ReadOnlySpan<float> rows, int dim, ReadOnlySpan<int> nodeOfKey, ReadOnlySpan<int> offsets,
        Span<ulong> sliceKeys, Span<float> sliceRows)
    {
        int count = keys.Length;
        CheckRows(count, dim, rows.Length, nameof(rows));
        CheckRows(count, dim, sliceRows.Length, nameof(sliceRows));
        if (nodeOfKey.Length < count) throw new ArgumentException($"nodeOfKey holds {nodeOfKey.Length} entries; {count} keys need as many.", nameof(nodeOfKey));
        if (sliceKeys.Length < count) throw new ArgumentException($"sliceKeys holds {sliceKeys.Length} keys; {count} are sliced.", nameof(sliceKeys));
        // Keys of one block go to one node, so copy runs, not keys: a dense push of 4,096 keys is one copy.
        var walk = new RunWalk(nodeOfKey[..count], offsets);
        try
        {
            while (walk.MoveNext())
            {
                keys.Slice(walk.Start, walk.Length).CopyTo(sliceKeys.Slice(walk.SliceAt, walk.Length));
                if (dim > 0) rows.Slice(walk.Start * dim, walk.Length * dim).CopyTo(sliceRows.Slice(walk.SliceAt * dim, walk.Length * dim));
            }
        }
        finally
        {
            walk.Dispose();
        }
    }

    /// <summary>
    /// The reverse of <see cref="Scatter(ReadOnlySpan{ulong}, ReadOnlySpan{float}, int, ReadOnlySpan{int}, ReadOnlySpan{int}, Span{ulong}, Span{float})"/>:
    /// copies node n's reply rows, in the order its keys were sent, from sliceRows[offsets[n] × dim ..] to each
    /// key's place in <paramref name="rows"/>. A client that receives the replies separately copies node n's reply
    /// values to sliceRows at offsets[n] × dim (one copy each), then gathers once.
    /// </summary>
    /// <param name="nodeOfKey">From <see cref="Assign"/>, exactly one entry per key of the request (slice a rented buffer to the key count).</param>
    /// <param name="offsets">From <see cref="Offsets"/>, one per node.</param>
    /// <param name="sliceRows">The replies, laid out as Scatter lays out rows; at least nodeOfKey.Length × dim.</param>
    /// <param name="dim">Floats per row (at least 1).</param>
    /// <param name="rows">At least nodeOfKey.Length × dim; receives the rows in key order.</param>
    public static void Gather(ReadOnlySpan<int> nodeOfKey, ReadOnlySpan<int> offsets, ReadOnlySpan<float> sliceRows, int dim, Span<float> rows)
    {
        int count = nodeOfKey.Length;
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 1);
        CheckRows(count, dim, sliceRows.Length, nameof(sliceRows));
        CheckRows(count, dim, rows.Length, nameof(rows));
        var walk = new RunWalk(nodeOfKey, offsets);
        try
        {
            while (walk.MoveNext())
                sliceRows.Slice(walk.SliceAt * dim, walk.Length * dim).CopyTo(rows.Slice(walk.Start * dim, walk.Length * dim));
        }
        finally
        {
            walk.Dispose();
        }
    }

    /// <summary>
    /// Walks a request's keys in runs that go to one node, each with where it lands in that node's slice: the one
    /// loop <see cref="Scatter(ReadOnlySpan{ulong}, ReadOnlySpan{float}, int, ReadOnlySpan{int}, ReadOnlySpan{int}, Span{ulong}, Span{float})"/>
    /// and <see cref="Gather"/> share. A cursor per node, pooled; not a <c>using</c> local (a read-only copy would
    /// not advance).
    /// </summary>
    private ref struct RunWalk
    {
        private readonly ReadOnlySpan<int> _nodeOfKey;
        private readonly int[] _cursor;
        private int _next;

        public RunWalk(ReadOnlySpan<int> nodeOfKey, ReadOnlySpan<int> offsets)
        {
            _nodeOfKey = nodeOfKey;
            _cursor = ArrayPool<int>.Shared.Rent(offsets.Length);
            offsets.CopyTo(_cursor);
        }

        /// <summary>Index of the run's first key in the request.</summary>
        public int Start { get; private set; }

        /// <summary>Keys in the run.</summary>
        public int Length { get; private set; }

        /// <summary>Index of the run's first key in its node's slice.</summary>
        public int SliceAt { get; private set; }

        public bool MoveNext()
        {
            int count = _nodeOfKey.Length;
            if (_next >= count) return false;
            int node = _nodeOfKey[_next];
            int end = _next + 1;
            while (end < count && _nodeOfKey[end] == node) end++;
            Start = _next;
            Length = end - _next;
            SliceAt = _cursor[node];
            _cursor[node] += Length;
            _next = end;
            return true;
        }

        public readonly void Dispose() => ArrayPool<int>.Shared.Return(_cursor);
    }

    /// <summary>
    /// The most runs <see cref="SliceRange(ClusterRing, ulong, ulong, int, Span{NodeRange})"/> can write for the
    /// range: one per block it touches, count / 4,096 + 2 at most.
    /// </summary>
    public static int MaxRanges(ulong first, int count)
    {
        ulong last = LastOf(first, count);
        return count == 0 ? 0 : (int)((last >> Ring.BlockBits) - (first >> Ring.BlockBits) + 1);
    }

    /// <summary>
    /// Splits the dense range first … first+count-1 into runs of one primary each, in key order: cut only where a
    /// block boundary changes the primary, so consecutive blocks of one node stay one RANGE block. Returns the
    /// number of runs written.
    /// </summary>
    /// <param name="ring">The ring of the current epoch.</param>
    /// <param name="tableHash">The table's <see cref="Ring.NameHash"/>.</param>
    /// <param name="first">First key; first + count - 1 must not pass 2^64 − 1.</param>
    /// <param name="count">Keys in the range (0 writes nothing).</param>
    /// <param name="destination">At least <see cref="MaxRanges"/>(first, count) long.</param>
    public static int SliceRange(ClusterRing ring, ulong tableHash, ulong first, int count, Span<NodeRange> destination)
    {
        ArgumentNullException.ThrowIfNull(ring);
        int max = MaxRanges(first, count);
        if (destination.Length < max) throw new ArgumentException($"destination holds {destination.Length} runs; the range may need {max}.", nameof(destination));
        if (count == 0) return 0;
        ulong lastBlock = LastOf(first, count) >> Ring.BlockBits;
        int written = 0;
        ulong runFirst = first;
        int runNode = ring.PrimaryOf(tableHash, first);
        // lastBlock ≤ 2^52 − 1, so block + 1 never wraps.
        for (ulong block = (first >> Ring.BlockBits) + 1; block <= lastBlock; block++)
        {
            ulong start = block << Ring.BlockBits;
            int node = ring.PrimaryOf(tableHash, start);
            if (node == runNode) continue;
            destination[written++] = new NodeRange(runNode, runFirst, (int)(start - runFirst));
            runFirst = start;
            runNode = node;
        }
        destination[written++] = new NodeRange(runNode, runFirst, (int)(first + (ulong)count - runFirst));
        return written;
    }

    /// <summary>As <see cref="SliceRange(ClusterRing, ulong, ulong, int, Span{NodeRange})"/>, into a new array of exactly the runs.</summary>
    public static NodeRange[] SliceRange(ClusterRing ring, ulong tableHash, ulong first, int count)
    {
        var runs = new NodeRange[MaxRanges(first, count)];
        return runs[..SliceRange(ring, tableHash, first, count, runs)];
    }

    private static ulong LastOf(ulong first, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > 0 && first > ulong.MaxValue - (ulong)(count - 1))
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"first {first} + count {count} passes 2^64 - 1.");
        }
        return count == 0 ? first : first + (ulong)(count - 1);
    }

    private static void CheckRows(int count, int dim, int length, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(dim);
        if ((long)count * dim > length) throw new ArgumentException($"{name} holds {length} floats; {count} rows of {dim} need {(long)count * dim}.", name);
    }

    private static ArgumentException Unsorted(int i, ReadOnlySpan<ulong> keys) =>
        new($"Keys must be strictly ascending: key {i} ({keys[i]}) follows {keys[i - 1]}.", "keys");
}
