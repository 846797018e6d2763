using System.Buffers;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;

namespace ParamDb.Cluster.Routing;

/// <summary>
/// A request's keys (and a push's rows) split by primary: node n's keys are <c>keys[offsets[n] ..
/// offsets[n] + counts[n]]</c>, ascending, with their rows at the same offsets × dim (the layout of
/// <see cref="KeySlicer"/>). A dense range is sliced into explicit keys, so each node gets one request: two
/// requests with the same worker clock would be one too many (the second is skipped as a retry). Arrays are rented
/// and returned on <see cref="Dispose"/>.
/// </summary>
internal sealed class Slices : IDisposable
{
    /// <summary>No keys on any node (a tick).</summary>
    public static readonly Slices Empty = new([], [], [], null, [], 0);

    private readonly int[] _counts;
    private readonly int[] _offsets;
    private ulong[] _keys;
    private float[]? _rows;
    private int[] _nodeOfKey;
    private readonly int _total;

    private Slices(int[] counts, int[] offsets, ulong[] keys, float[]? rows, int[] nodeOfKey, int total)
    {
        _counts = counts;
        _offsets = offsets;
        _keys = keys;
        _rows = rows;
        _nodeOfKey = nodeOfKey;
        _total = total;
    }

    /// <summary>
    /// Slices a parsed KV block (a push's rows with it when <paramref name="withValues"/>); with a
    /// <paramref name="holder"/> (a node index), keys whose arc that node holds a copy of go to it, the others to
    /// their primaries (a pull that any copy may answer).
    /// </summary>
    public static Slices Of(ClusterRing ring, TableHandle table, ReadOnlySpan<byte> block, in KvBlock kv, bool withValues, int holder = -1)
    {
        int count = kv.Count, dim = table.Dim, nodes = ring.NodeCount;
        var counts = new int[nodes];
        var offsets = new int[nodes];
        int[] nodeOfKey = ArrayPool<int>.Shared.Rent(Math.Max(count, 1));
        ulong[] keys = ArrayPool<ulong>.Shared.Rent(Math.Max(count, 1));
        ulong[]? generated = null;
        float[]? rows = withValues ? ArrayPool<float>.Shared.Rent(Math.Max(count * dim, 1)) : null;
        try
        {
            ReadOnlySpan<ulong> source;
            if (kv.IsRange)
            {
                generated = ArrayPool<ulong>.Shared.Rent(Math.Max(count, 1));
                for (int i = 0; i < count; i++) generated[i] = kv.First + (ulong)i;
                source = generated.AsSpan(0, count);
            }
            else source = kv.Keys(block);
            KeySlicer.Assign(ring, table.RingHash, source, nodeOfKey.AsSpan(0, count), counts);
            if (holder >= 0) ToHolder(ring, table.RingHash, source, nodeOfKey.AsSpan(0, count), counts, holder);
            KeySlicer.Offsets(counts, offsets);
            if (rows is null) KeySlicer.Scatter(source, nodeOfKey.AsSpan(0, count), offsets, keys.AsSpan(0, count));
            else KeySlicer.Scatter(source, kv.Values(block), dim, nodeOfKey.AsSpan(0, count), offsets, keys.AsSpan(0, count), rows.AsSpan(0, count * dim));
            return new Slices(counts, offsets, keys, rows, nodeOfKey, count);
        }
        catch
        {
            ArrayPool<int>.Shared.Return(nodeOfKey);
            ArrayPool<ulong>.Shared.Return(keys);
            if (rows is not null) ArrayPool<float>.Shared.Return(rows);
            throw;
        }
        finally
        {
            if (generated is not null) ArrayPool<ulong>.Shared.Return(generated);
        }
    }

    /// <summary>Moves to <paramref name="holder"/> every key whose arc it holds a copy of; one ring search per 4,096-key block.</summary>
    private static void ToHolder(ClusterRing ring, ulong tableHash, ReadOnlySpan<ulong> keys, Span<int> nodeOfKey, int[] counts, int holder)
    {
        ulong lastBlock = ulong.MaxValue;
        bool held = false;
        for (int i = 0; i < keys.Length; i++)
        {
            if (nodeOfKey[i] == holder) continue;
            if (keys[i] >> Ring.BlockBits != lastBlock)
            {
                lastBlock = keys[i] >> Ring.BlockBits;
                held = ring.Holds(holder, tableHash, keys[i]);
            }
            if (!held) continue;
            counts[nodeOfKey[i]]--;
            counts[holder]++;
            nodeOfKey[i] = holder;
        }
    }

    /// <summary>Keys of node <paramref name="n"/>.</summary>
    public int Count(int n) => _counts.Length == 0 ? 0 : _counts[n];

    /// <summary>Nodes with at least one key.</summary>
    public int NodesWithKeys()
    {
        int nodes = 0;
        foreach (int c in _counts) if (c > 0) nodes++;
        return nodes;
    }

    /// <summary>Node <paramref name="n"/>'s keys, ascending.</summary>
    public ReadOnlyMemory<ulong> Keys(int n) => _keys.AsMemory(_offsets[n], _counts[n]);

    /// <summary>Node <paramref name="n"/>'s rows: a push's values, or where a pull's replies go.</summary>
    public Memory<float> Rows(int n, int dim) => _rows!.AsMemory(_offsets[n] * dim, _counts[n] * dim);

    /// <summary>Gives the slices room for a pull's rows, <paramref name="dim"/> floats per key.</summary>
    public void RentRows(int dim) => _rows ??= ArrayPool<float>.Shared.Rent(Math.Max(_total * dim, 1));

    /// <summary>Node <paramref name="n"/>'s part as a KV block in a rented array (return it to <see cref="ArrayPool{T}.Shared"/>).</summary>
    public byte[] Block(int n, int dim, bool withValues, out int length)
    {
        int count = _counts[n];
        length = checked((int)KvBlockWriter.SizeOf(range: false, count, withValues ? dim : 0, withValues));
        byte[] block = ArrayPool<byte>.Shared.Rent(length);
        ReadOnlySpan<float> values = withValues ? _rows.AsSpan(_offsets[n] * dim, count * dim) : default;
        KvBlockWriter.Write(block.AsSpan(0, length), _keys.AsSpan(_offsets[n], count), values, withValues ? dim : 0, withValues);
        return block;
    }

    /// <summary>Puts the nodes' rows back in the request's key order.</summary>
    public void Gather(int dim, Span<float> destination) =>
        KeySlicer.Gather(_nodeOfKey.AsSpan(0, _total), _offsets, _rows.AsSpan(0, _total * dim), dim, destination);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_total == 0 && _counts.Length == 0) return;   // Empty
        ArrayPool<int>.Shared.Return(_nodeOfKey);
        ArrayPool<ulong>.Shared.Return(_keys);
        if (_rows is not null) ArrayPool<float>.Shared.Return(_rows);
        _nodeOfKey = [];
        _keys = [];
        _rows = null;
    }
}
