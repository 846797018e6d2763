using System.Buffers;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Client.Internal;

/// <summary>
/// A batch, or a slice of one for one node: explicit keys (strictly ascending) or the dense range
/// <see cref="First"/> … First + Count - 1, with the rows to push (<see cref="Values"/>) or the place a pull's rows go
/// (<see cref="Destination"/>; empty with <see cref="Dim"/> 0 when the reply allocates them).
/// </summary>
internal readonly record struct Batch(bool Range, ulong First, int Count, ReadOnlyMemory<ulong> Keys, ReadOnlyMemory<float> Values, Memory<float> Destination, int Dim)
{
    public static Batch OfKeys(ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values, Memory<float> destination, int dim) =>
        new(false, 0, keys.Length, keys, values, destination, dim);

    public static Batch OfRange(ulong first, int count, ReadOnlyMemory<float> values, Memory<float> destination, int dim) =>
        new(true, first, count, default, values, destination, dim);
}

/// <summary>
/// One batch cut into one slice per primary of a <see cref="ClusterMap"/> (<see cref="KeySlicer"/>): the ring is
/// searched once per 4,096-key block, and every buffer is rented. A node with no keys gets an empty slice. When one
/// node owns everything, its slice is the batch itself (nothing copied). Explicit keys are scattered into one
/// rented key (and row) buffer, node after node; a pull's replies land in the rented rows and <see cref="Gather"/>
/// puts them back in key order. A dense range becomes one RANGE slice per node that owns one run of it — written
/// from, and read into, the caller's memory — and explicit keys for a node that owns several runs, so each node
/// still gets one request.
/// </summary>
internal sealed class SlicePlan : IDisposable
{
    private readonly Batch _batch;
    private readonly int _nodes;
    private readonly Batch[] _slices;
    private readonly int[] _counts;
    private int[]? _offsets;
    private int[]? _nodeOfKey;
    private ulong[]? _keys;
    private float[]? _rows;
    private NodeRange[]? _runs;
    private int _runCount;
    private int[]? _runsOfNode;
    private int _sole = -1;

    private SlicePlan(Batch batch, int nodes)
    {
        _batch = batch;
        _nodes = nodes;
        _slices = new Batch[nodes];
        _counts = ArrayPool<int>.Shared.Rent(nodes);
        Array.Clear(_counts, 0, nodes);
    }

    /// <summary>Rows of node <paramref name="node"/>; 0 when it has none.</summary>
    public int CountOf(int node) => _counts[node];

    /// <summary>Node <paramref name="node"/>'s slice (Count 0 when it has no keys).</summary>
    public Batch SliceOf(int node) => _slices[node];

    /// <summary>Slices <paramref name="batch"/> (Count &gt; 0) by <paramref name="map"/>'s ring.</summary>
    /// <param name="map">The ring.</param>
    /// <param name="tableHash">The table's ring hash.</param>
    /// <param name="batch">What to slice.</param>
    /// <param name="push">True: the slices carry values; false: they receive rows.</param>
    /// <exception cref="ArgumentException">Explicit keys not strictly ascending.</exception>
    public static SlicePlan Build(ClusterMap map, ulong tableHash, in Batch batch, bool push)
    {
        var plan = new SlicePlan(batch, map.NodeCount);
        try
        {
            if (batch.Range) plan.SliceRange(map.Ring, tableHash, push);
            else plan.SliceKeys(map.Ring, tableHash, push);
            return plan;
        }
        catch
        {
            plan.Dispose();
            throw;
        }
    }

    private void SliceKeys(ClusterRing ring, ulong tableHash, bool push)
    {
        int count = _batch.Count, dim = _batch.Dim;
        _nodeOfKey = ArrayPool<int>.Shared.Rent(count);
        int used = KeySlicer.Assign(ring, tableHash, _batch.Keys.Span, _nodeOfKey, _counts.AsSpan(0, _nodes));
        if (used == 1)
        {
            _sole = _nodeOfKey[0];
            _slices[_sole] = _batch;
            return;
        }
        _offsets = ArrayPool<int>.Shared.Rent(_nodes);
        KeySlicer.Offsets(_counts.AsSpan(0, _nodes), _offsets);
        _keys = ArrayPool<ulong>.Shared.Rent(count);
        bool rows = push || dim > 0;
        if (rows) _rows = ArrayPool<float>.Shared.Rent(count * dim);
        if (push) KeySlicer.Scatter(_batch.Keys.Span, _batch.Values.Span, dim, _nodeOfKey, _offsets.AsSpan(0, _nodes), _keys, _rows);
        else KeySlicer.Scatter(_batch.Keys.Span, _nodeOfKey, _offsets.AsSpan(0, _nodes), _keys);
        for (int n = 0; n < _nodes; n++)
        {
            int c = _counts[n], at = _offsets[n];
            if (c == 0) continue;
            var keys = new ReadOnlyMemory<ulong>(_keys, at, c);
            _slices[n] = push
                ? Batch.OfKeys(keys, new ReadOnlyMemory<float>(_rows, at * dim, c * dim), default, dim)
                : Batch.OfKeys(keys, default, dim > 0 ? new Memory<float>(_rows, at * dim, c * dim) : default, dim);
        }
    }

    private void SliceRange(ClusterRing ring, ulong tableHash, bool push)
    {
        int dim = _batch.Dim;
        ulong first = _batch.First;
        _runs = ArrayPool<NodeRange>.Shared.Rent(KeySlicer.MaxRanges(first, _batch.Count));
        _runCount = KeySlicer.SliceRange(ring, tableHash, first, _batch.Count, _runs);
        _runsOfNode = ArrayPool<int>.Shared.Rent(_nodes);
        Array.Clear(_runsOfNode, 0, _nodes);
        int used = 0;
        for (int r = 0; r < _runCount; r++)
        {
            NodeRange run = _runs[r];
            if (_counts[run.Node] == 0) used++;
            _counts[run.Node] += run.Count;
            _runsOfNode[run.Node]++;
        }
        if (used == 1)
        {
            _sole = _runs[0].Node;
            _slices[_sole] = _batch;
            return;
        }
        // Nodes with one run get a RANGE slice over the caller's memory; the others share one explicit-key buffer.
        _offsets = ArrayPool<int>.Shared.Rent(_nodes);
        int explicitKeys = 0;
        for (int n = 0; n < _nodes; n++)
        {
            _offsets[n] = explicitKeys;
            if (_runsOfNode[n] > 1) explicitKeys += _counts[n];
        }
        bool rows = push || dim > 0;
        if (explicitKeys > 0)
        {
            _keys = ArrayPool<ulong>.Shared.Rent(explicitKeys);
            if (rows) _rows = ArrayPool<float>.Shared.Rent(explicitKeys * dim);
        }
        Span<int> cursor = _nodes <= 256 ? stackalloc int[_nodes] : new int[_nodes];
        _offsets.AsSpan(0, _nodes).CopyTo(cursor);
        for (int r = 0; r < _runCount; r++)
        {
            NodeRange run = _runs[r];
            int n = run.Node;
            int from = (int)(run.First - first);
            if (_runsOfNode[n] == 1)
            {
                _slices[n] = push
                    ? Batch.OfRange(run.First, run.Count, _batch.Values.Slice(from * dim, run.Count * dim), default, dim)
                    : Batch.OfRange(run.First, run.Count, default, dim > 0 ? _batch.Destination.Slice(from * dim, run.Count * dim) : default, dim);
                continue;
            }
            int at = cursor[n];
            Span<ulong> keys = _keys.AsSpan(at, run.Count);
            for (int i = 0; i < keys.Length; i++) keys[i] = run.First + (ulong)i;
            if (push) _batch.Values.Span.Slice(from * dim, run.Count * dim).CopyTo(_rows.AsSpan(at * dim));
            cursor[n] = at + run.Count;
        }
        for (int n = 0; n < _nodes; n++)
        {
            if (_runsOfNode[n] <= 1) continue;
            int c = _counts[n], at = _offsets[n];
            var keys = new ReadOnlyMemory<ulong>(_keys, at, c);
            _slices[n] = push
                ? Batch.OfKeys(keys, new ReadOnlyMemory<float>(_rows, at * dim, c * dim), default, dim)
                : Batch.OfKeys(keys, default, dim > 0 ? new Memory<float>(_rows, at * dim, c * dim) : default, dim);
        }
    }

    /// <summary>After every slice's pull filled its destination: puts rented rows in key order into the batch's destination.</summary>
    public void Gather()
    {
        int dim = _batch.Dim;
        if (_sole >= 0 || _rows is null || dim == 0) return;
        Span<float> destination = _batch.Destination.Span;
        if (!_batch.Range)
        {
            KeySlicer.Gather(_nodeOfKey.AsSpan(0, _batch.Count), _offsets.AsSpan(0, _nodes), _rows, dim, destination);
            return;
        }
        Span<int> cursor = _nodes <= 256 ? stackalloc int[_nodes] : new int[_nodes];
        _offsets.AsSpan(0, _nodes).CopyTo(cursor);
        for (int r = 0; r < _runCount; r++)
        {
            NodeRange run = _runs![r];
            if (_runsOfNode![run.Node] <= 1) continue;
            int at = cursor[run.Node];
            _rows.AsSpan(at * dim, run.Count * dim).CopyTo(destination[((int)(run.First - _batch.First) * dim)..]);
            cursor[run.Node] = at + run.Count;
        }
    }

    /// <summary>
    /// Puts the arrays each node's pull allocated (<paramref name="perNode"/>, null for nodes without keys) into one
    /// new array in key order, at the replies' dim.
    /// </summary>
    /// <exception cref="InvalidDataException">The nodes answered with rows of different widths.</exception>
    public float[] GatherNew(float[]?[] perNode)
    {
        if (_sole >= 0) return perNode[_sole]!;
        int dim = -1;
        for (int n = 0; n < _nodes; n++)
        {
            if (_counts[n] == 0) continue;
            int d = perNode[n]!.Length / _counts[n];
            if (dim >= 0 && d != dim) throw new InvalidDataException($"The nodes answered this pull with rows of different dims ({dim} and {d}).");
            dim = d;
        }
        var result = new float[checked(_batch.Count * dim)];
        Span<int> cursor = _nodes <= 256 ? stackalloc int[_nodes] : new int[_nodes];
        cursor.Clear();
        if (!_batch.Range)
        {
            int count = _batch.Count;
            for (int i = 0; i < count;)
            {
                int node = _nodeOfKey![i];
                int end = i + 1;
                while (end < count && _nodeOfKey[end] == node) end++;
                int run = end - i;
                perNode[node].AsSpan(cursor[node] * dim, run * dim).CopyTo(result.AsSpan(i * dim));
                cursor[node] += run;
                i = end;
            }
            return result;
        }
        for (int r = 0; r < _runCount; r++)
        {
            NodeRange run = _runs![r];
            perNode[run.Node].AsSpan(cursor[run.Node] * dim, run.Count * dim).CopyTo(result.AsSpan((int)(run.First - _batch.First) * dim));
            cursor[run.Node] += run.Count;
        }
        return result;
    }

    /// <summary>
    /// The keys and rows of the nodes marked in <paramref name="refused"/>, in key order, as explicit keys: what a
    /// push sends again after those nodes answered 421. Either the batch itself (one node had it all) or rented
    /// buffers that <paramref name="owner"/> returns when disposed.
    /// </summary>
    public Batch Pending(ReadOnlySpan<bool> refused, out RentedBatch? owner)
    {
        owner = null;
        if (_sole >= 0) return _batch;
        int dim = _batch.Dim, total = 0;
        for (int n = 0; n < _nodes; n++) if (refused[n]) total += _counts[n];
        var rented = new RentedBatch(total, dim);
        ulong[] keys = rented.Keys;
        float[] rows = rented.Rows;
        ReadOnlySpan<float> values = _batch.Values.Span;
        int at = 0;
        if (!_batch.Range)
        {
            ReadOnlySpan<ulong> source = _batch.Keys.Span;
            int count = _batch.Count;
            for (int i = 0; i < count;)
            {
                int node = _nodeOfKey![i];
                int end = i + 1;
                while (end < count && _nodeOfKey[end] == node) end++;
                if (refused[node])
                {
                    int run = end - i;
                    source.Slice(i, run).CopyTo(keys.AsSpan(at));
                    values.Slice(i * dim, run * dim).CopyTo(rows.AsSpan(at * dim));
                    at += run;
                }
                i = end;
            }
        }
        else
        {
            for (int r = 0; r < _runCount; r++)
            {
                NodeRange run = _runs![r];
                if (!refused[run.Node]) continue;
                for (int i = 0; i < run.Count; i++) keys[at + i] = run.First + (ulong)i;
                values.Slice((int)(run.First - _batch.First) * dim, run.Count * dim).CopyTo(rows.AsSpan(at * dim));
                at += run.Count;
            }
        }
        owner = rented;
        return Batch.OfKeys(new ReadOnlyMemory<ulong>(keys, 0, total), new ReadOnlyMemory<float>(rows, 0, total * dim), default, dim);
    }

    public void Dispose()
    {
        ArrayPool<int>.Shared.Return(_counts);
        if (_offsets is not null) ArrayPool<int>.Shared.Return(_offsets);
        if (_nodeOfKey is not null) ArrayPool<int>.Shared.Return(_nodeOfKey);
        if (_keys is not null) ArrayPool<ulong>.Shared.Return(_keys);
        if (_rows is not null) ArrayPool<float>.Shared.Return(_rows);
        if (_runs is not null) ArrayPool<NodeRange>.Shared.Return(_runs);
        if (_runsOfNode is not null) ArrayPool<int>.Shared.Return(_runsOfNode);
        _offsets = _nodeOfKey = _runsOfNode = null;
        _keys = null;
        _rows = null;
        _runs = null;
    }
}

/// <summary>Explicit keys and their rows in rented buffers, returned on dispose.</summary>
internal sealed class RentedBatch : IDisposable
{
    public RentedBatch(int count, int dim)
    {
        Keys = ArrayPool<ulong>.Shared.Rent(count);
        Rows = ArrayPool<float>.Shared.Rent(count * dim);
    }

    public ulong[] Keys { get; private set; }

    public float[] Rows { get; private set; }

    public void Dispose()
    {
        if (Keys.Length > 0) ArrayPool<ulong>.Shared.Return(Keys);
        if (Rows.Length > 0) ArrayPool<float>.Shared.Return(Rows);
        Keys = [];
        Rows = [];
    }
}
