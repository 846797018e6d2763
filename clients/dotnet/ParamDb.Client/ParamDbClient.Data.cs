using System.Buffers;
using System.Globalization;
using ParamDb.Client.Internal;
using static ParamDb.Client.Internal.BatchChecks;
using ParamDb.Protocol;

namespace ParamDb.Client;

// Push and pull: a batch is parallel arrays, as in ps-lite's KVWorker. Keys are strictly ascending u64;
// values are row-major, keys.Length × dim floats, so row i is values[i*dim .. (i+1)*dim).
public sealed partial class ParamDbClient
{
    /// <summary>
    /// Pushes one row per key; the table's updater folds each into the stored row (<c>add</c>: w += g).
    /// The request body is the KV block, built in a pooled buffer.
    /// </summary>
    /// <param name="table">Table name.</param>
    /// <param name="keys">Strictly ascending keys.</param>
    /// <param name="values">keys.Length × dim floats, row-major; dim is values.Length / keys.Length and must be the table's.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Rows received and rows applied.</returns>
    /// <exception cref="ArgumentException">Keys not strictly ascending, or values not a whole number of rows.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>key_out_of_range</c>…</exception>
    public async Task<PushResult> PushAsync(string table, ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values, CancellationToken cancellationToken = default)
    {
        string path = DataPath(table, "push");
        CheckAscending(keys.Span);
        int dim = RowWidth(keys.Length, values.Length, nameof(values));
        int size = BlockSize(range: false, keys.Length, dim, values: true);
        if (keys.Length > 0 && await RoutingMapAsync(cancellationToken).ConfigureAwait(false) is { } map)
            return await PushRoutedAsync(map, table, path, Batch.OfKeys(keys, values, default, dim), cancellationToken).ConfigureAwait(false);
        byte[] raw = ArrayPool<byte>.Shared.Rent(size);
        KvBlockWriter.Write(raw.AsSpan(0, size), keys.Span, values.Span, dim, withValues: true);
        return await PushCoreAsync(_base, path, 0, raw, size, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pushes the dense range of rows <paramref name="first"/> … first + values.Length / dim - 1.</summary>
    /// <param name="table">Table name.</param>
    /// <param name="first">Key of the first row.</param>
    /// <param name="values">A whole number of rows of <paramref name="dim"/> floats, row-major.</param>
    /// <param name="dim">Floats per row, the table's dim.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">Values not a whole number of rows, or the range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>key_out_of_range</c>…</exception>
    public async Task<PushResult> PushRangeAsync(string table, ulong first, ReadOnlyMemory<float> values, int dim, CancellationToken cancellationToken = default)
    {
        string path = DataPath(table, "push");
        int count = RowCount(values.Length, dim, nameof(values));
        CheckRange(first, count);
        int size = BlockSize(range: true, count, dim, values: true);
        if (count > 0 && await RoutingMapAsync(cancellationToken).ConfigureAwait(false) is { } map)
            return await PushRoutedAsync(map, table, path, Batch.OfRange(first, count, values, default, dim), cancellationToken).ConfigureAwait(false);
        byte[] raw = ArrayPool<byte>.Shared.Rent(size);
        KvBlockWriter.WriteRange(raw.AsSpan(0, size), first, count, values.Span, dim, withValues: true);
        return await PushCoreAsync(_base, path, 0, raw, size, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Pulls the rows of <paramref name="keys"/> into <paramref name="destination"/>, in place: the reply's
    /// values are read from the connection straight into it. Missing rows read as the table's initial value.
    /// </summary>
    /// <param name="table">Table name.</param>
    /// <param name="keys">Strictly ascending keys.</param>
    /// <param name="destination">keys.Length × dim floats; dim is destination.Length / keys.Length and must be the table's.
    /// The caller owns it; after a failed call its contents are unspecified.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">Keys not strictly ascending, or the destination not a whole number of rows.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>…</exception>
    public async Task PullAsync(string table, ReadOnlyMemory<ulong> keys, Memory<float> destination, CancellationToken cancellationToken = default)
    {
        string path = DataPath(table, "pull");
        CheckAscending(keys.Span);
        int dim = RowWidth(keys.Length, destination.Length, nameof(destination));
        if (keys.Length > 0 && await RoutingMapAsync(cancellationToken).ConfigureAwait(false) is { } map)
        {
            await Routed.PullAsync(new RestSender(this, path), _ring, map, _ring.TableHash(table), Batch.OfKeys(keys, default, destination, dim), cancellationToken).ConfigureAwait(false);
            return;
        }
        await PullCoreAsync(_base, path, 0, range: false, keys, 0, keys.Length, dim, destination, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pulls the rows of <paramref name="keys"/> into a new array of keys.Length × dim floats, row-major, at the table's dim.</summary>
    /// <param name="table">Table name.</param>
    /// <param name="keys">Strictly ascending keys.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">Keys not strictly ascending.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>…</exception>
    public async Task<float[]> PullAsync(string table, ReadOnlyMemory<ulong> keys, CancellationToken cancellationToken = default)
    {
        string path = DataPath(table, "pull");
        CheckAscending(keys.Span);
        if (keys.Length > 0 && await RoutingMapAsync(cancellationToken).ConfigureAwait(false) is { } map)
            return await Routed.PullNewAsync(new RestSender(this, path), _ring, map, _ring.TableHash(table), Batch.OfKeys(keys, default, default, 0), cancellationToken).ConfigureAwait(false);
        return (await PullCoreAsync(_base, path, 0, range: false, keys, 0, keys.Length, dim: 0, default, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>Pulls the dense range of rows <paramref name="first"/> … first + count - 1 into <paramref name="destination"/>, in place.</summary>
    /// <param name="table">Table name.</param>
    /// <param name="first">Key of the first row.</param>
    /// <param name="count">Rows.</param>
    /// <param name="destination">count × dim floats; dim must be the table's. After a failed call its contents are unspecified.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">The destination is not a whole number of rows, or the range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>…</exception>
    public async Task PullRangeAsync(string table, ulong first, int count, Memory<float> destination, CancellationToken cancellationToken = default)
    {
        string path = DataPath(table, "pull");
        CheckRange(first, count);
        int dim = RowWidth(count, destination.Length, nameof(destination));
        if (count > 0 && await RoutingMapAsync(cancellationToken).ConfigureAwait(false) is { } map)
        {
            await Routed.PullAsync(new RestSender(this, path), _ring, map, _ring.TableHash(table), Batch.OfRange(first, count, default, destination, dim), cancellationToken).ConfigureAwait(false);
            return;
        }
        await PullCoreAsync(_base, path, 0, range: true, default, first, count, dim, destination, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pulls the dense range of rows <paramref name="first"/> … first + count - 1 into a new array, at the table's dim.</summary>
    /// <param name="table">Table name.</param>
    /// <param name="first">Key of the first row.</param>
    /// <param name="count">Rows.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">The range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>…</exception>
    public async Task<float[]> PullRangeAsync(string table, ulong first, int count, CancellationToken cancellationToken = default)
    {
        string path = DataPath(table, "pull");
        CheckRange(first, count);
        if (count > 0 && await RoutingMapAsync(cancellationToken).ConfigureAwait(false) is { } map)
            return await Routed.PullNewAsync(new RestSender(this, path), _ring, map, _ring.TableHash(table), Batch.OfRange(first, count, default, default, 0), cancellationToken).ConfigureAwait(false);
        return (await PullCoreAsync(_base, path, 0, range: true, default, first, count, dim: 0, default, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>One row (<c>GET /v1/tables/{table}/rows/{key}</c>): its dim values, or the initial value if never pushed.</summary>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>key_out_of_range</c>.</exception>
    public async Task<float[]> GetRowAsync(string table, ulong key, CancellationToken cancellationToken = default)
    {
        string path = DataPath(table, "rows/" + key.ToString(CultureInfo.InvariantCulture));
        // In a cluster, straight to the key's primary, which reads it locally (no epoch: it would route a stale guess).
        Uri node = await RoutingMapAsync(cancellationToken).ConfigureAwait(false) is { } map
            ? map.Rest[map.Ring.PrimaryOf(_ring.TableHash(table), key)] ?? _base
            : _base;
        using var request = NewRequest(HttpMethod.Get, node, path);
        var row = await SendForJsonAsync(request, ProtocolJson.Default.RowReply, cancellationToken).ConfigureAwait(false);
        return row.Values;
    }

    /// <summary>The map to slice by, or null to send the call whole to this client's address as ever.</summary>
    private ValueTask<ClusterMap?> RoutingMapAsync(CancellationToken cancellationToken)
    {
        if (!_ring.Enabled) return new((ClusterMap?)null);
        ValueTask<ClusterMap?> map = _ring.GetAsync(cancellationToken);
        if (map.IsCompletedSuccessfully) return new(map.Result is { RoutesRest: true } routed ? routed : null);
        return AwaitRoutingMapAsync(map);

        static async ValueTask<ClusterMap?> AwaitRoutingMapAsync(ValueTask<ClusterMap?> pending) =>
            await pending.ConfigureAwait(false) is { RoutesRest: true } routed ? routed : null;
    }

    private async Task<PushResult> PushRoutedAsync(ClusterMap map, string table, string path, Batch batch, CancellationToken cancellationToken)
    {
        RoutedPush pushed = await Routed.PushAsync(new RestSender(this, path), _ring, map, _ring.TableHash(table), batch, clocked: false, cancellationToken).ConfigureAwait(false);
        return pushed.Result;
    }

    /// <summary>Sends a block in <paramref name="raw"/> (rented; ownership passes here) to <paramref name="node"/>, with the ring epoch when not 0.</summary>
    private async Task<PushResult> PushCoreAsync(Uri node, string path, ulong epoch, byte[] raw, int size, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Post, node, path);
        request.Content = Body(raw, size);
        if (epoch != 0) request.Headers.TryAddWithoutValidation(ParamDbHeaders.RingEpoch, epoch.ToString(CultureInfo.InvariantCulture));
        return await SendForJsonAsync(request, ProtocolJson.Default.PushResult, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends a pull request block; dim 0 asks for the table's dim and returns a new array, otherwise fills <paramref name="destination"/>.</summary>
    private async Task<float[]?> PullCoreAsync(Uri node, string path, ulong epoch, bool range, ReadOnlyMemory<ulong> keys, ulong first, int count, int dim, Memory<float> destination, CancellationToken cancellationToken)
    {
        int size = BlockSize(range, count, dim, values: false);
        byte[] raw = ArrayPool<byte>.Shared.Rent(size);
        if (range) KvBlockWriter.WriteRange(raw.AsSpan(0, size), first, count, default, dim, withValues: false);
        else KvBlockWriter.Write(raw.AsSpan(0, size), keys.Span, default, dim, withValues: false);

        using var request = NewRequest(HttpMethod.Post, node, path);
        request.Content = Body(raw, size);
        request.Headers.TryAddWithoutValidation("Accept", MediaTypes.KvBlock);
        if (epoch != 0) request.Headers.TryAddWithoutValidation(ParamDbHeaders.RingEpoch, epoch.ToString(CultureInfo.InvariantCulture));
        if (_lz4) request.Headers.TryAddWithoutValidation("Accept-Encoding", MediaTypes.Lz4Encoding);
        using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        string? mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType != MediaTypes.KvBlock)
            throw new InvalidDataException($"The server answered a pull with {mediaType ?? "no media type"}, not {MediaTypes.KvBlock}.");
        return await KvReply.ReadPullAsync(response.Content, range, keys, first, count, dim, destination, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Wraps the block in <paramref name="raw"/> (rented; ownership passes here) as the request body,
    /// LZ4-framing it first when compression is on.
    /// </summary>
    private PooledBlockContent Body(byte[] raw, int length)
    {
        if (!_lz4) return new PooledBlockContent(raw, length, lz4: false);
        try
        {
            byte[] packed = Lz4Frames.Encode(raw.AsSpan(0, length), headroom: 0, out int packedLength);
            return new PooledBlockContent(packed, packedLength, lz4: true);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    /// <summary>A routed call's requests, one per node, over REST with the map's epoch.</summary>
    private sealed class RestSender(ParamDbClient client, string path) : SliceSender
    {
        public override async ValueTask<PushResult> PushAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken)
        {
            int size = BlockSize(slice.Range, slice.Count, slice.Dim, values: true);
            byte[] raw = ArrayPool<byte>.Shared.Rent(size);
            if (slice.Range) KvBlockWriter.WriteRange(raw.AsSpan(0, size), slice.First, slice.Count, slice.Values.Span, slice.Dim, withValues: true);
            else KvBlockWriter.Write(raw.AsSpan(0, size), slice.Keys.Span, slice.Values.Span, slice.Dim, withValues: true);
            return await client.PushCoreAsync(Address(map, node), path, map.Epoch, raw, size, cancellationToken).ConfigureAwait(false);
        }

        public override ValueTask<PushResult> TickAsync(ClusterMap map, int node, CancellationToken cancellationToken) =>
            throw new NotSupportedException("REST pushes carry no clock.");

        public override async ValueTask<ulong> PullAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken)
        {
            await client.PullCoreAsync(Address(map, node), path, map.Epoch, slice.Range, slice.Keys, slice.First, slice.Count, slice.Dim, slice.Destination, cancellationToken).ConfigureAwait(false);
            return 0;
        }

        public override async ValueTask<float[]> PullNewAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken) =>
            (await client.PullCoreAsync(Address(map, node), path, map.Epoch, slice.Range, slice.Keys, slice.First, slice.Count, dim: 0, default, cancellationToken).ConfigureAwait(false))!;

        private Uri Address(ClusterMap map, int node) => map.Rest[node] ?? client._base;
    }

    private static string DataPath(string table, string action)
    {
        CheckName(table);
        return "v1/tables/" + table + "/" + action;
    }
}
