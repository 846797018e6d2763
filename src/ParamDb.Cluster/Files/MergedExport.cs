using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Safetensors;
using ParamDb.Storage;
using ParamDb.Storage.Export;

namespace ParamDb.Cluster.Files;

/// <summary>
/// A table's export on a cluster (docs/cluster.md, "Export and import"): every node prepares the export of its own
/// rows (<c>GET /v1/tables/{t}/export?scope=node</c>, keys sorted), and this one merges the sorted streams into one
/// safetensors file. The file's length is the sum of the nodes' counts, so the reply still carries an exact
/// Content-Length.
/// </summary>
/// <remarks>
/// A safetensors file holds all its keys before all its values, and each node's stream does too, so the merge goes
/// twice: the keys phase merges the nodes' keys and writes, for each key, which node it came from (one byte a key,
/// to a spool file under DATA/tmp: 1 MB per million rows); the values phase reads that order back and copies each
/// row from its node's stream. Memory stays constant: one 256 KiB window per node and two 1 MiB buffers.
/// Like one node's export it is live, not a point-in-time view. A key on two nodes (which one primary per range
/// rules out) stops the download: the file would not be a valid export.
/// </remarks>
public sealed class MergedExport : ITableExport
{
    /// <summary>Bytes written to the destination at once: 1 MiB.</summary>
    private const int OutputBytes = 1 << 20;

    /// <summary>Merge-order bytes read back at once: 64 KiB, one per row.</summary>
    private const int OrderChunk = 64 * 1024;

    private readonly ExportSource[] _sources;
    private readonly FileStream _order;

    private MergedExport(ExportSource[] sources, FileStream order, SafetensorsHeader header)
    {
        _sources = sources;
        _order = order;
        Header = header;
    }

    /// <inheritdoc />
    public SafetensorsHeader Header { get; }

    /// <inheritdoc />
    public long Length => Header.FileLength;

    /// <summary>
    /// Asks every other node of the ring for its export, prepares this node's own, and checks the nodes' prefixes.
    /// </summary>
    /// <returns>The merged export, or the problem that stopped it (a node unreachable or refusing).</returns>
    /// <exception cref="InvalidDataException">A node's export does not parse, or its dim differs.</exception>
    public static async Task<(MergedExport? Export, ProtocolError Error)> PrepareAsync(
        ClusterMember member, INodeStorage storage, TableHandle table, int runKeys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(member);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(table);
        IReadOnlyList<(string Id, string Http)> others = member.Others();
        if (others.Count + 1 > byte.MaxValue) throw new NotSupportedException($"A merged export orders rows by a byte per node: {others.Count + 1} nodes are too many.");
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Every node scans and sorts at once; the first failure stops the others.
        var opening = new Task<ExportSource>[others.Count + 1];
        opening[0] = Task.Run(() => OpenLocalAsync(member.Identity.NodeId, storage, table, runKeys, abandon.Token), abandon.Token);
        for (int i = 0; i < others.Count; i++) opening[i + 1] = OpenPeerAsync(member.Peers, others[i].Id, others[i].Http, table.Name, abandon.Token);
        var pending = new List<Task<ExportSource>>(opening);
        while (pending.Count > 0)
        {
            Task<ExportSource> done = await Task.WhenAny(pending).ConfigureAwait(false);
            pending.Remove(done);
            if (!done.IsCompletedSuccessfully) await abandon.CancelAsync().ConfigureAwait(false);
        }

        var sources = new ExportSource[opening.Length];
        Exception? failure = null;
        ProtocolError problem = default;
        for (int i = 0; i < opening.Length; i++)
        {
            if (opening[i].IsCompletedSuccessfully) sources[i] = opening[i].Result;
            else if (opening[i].Exception?.InnerException is PeerProblemException refused) problem = problem.IsNone ? refused.Error : problem;
            else if (opening[i].Exception?.InnerException is { } thrown and not OperationCanceledException) failure ??= thrown;
        }
        foreach (ExportSource? source in sources)
        {
            if (source is not null && source.Header.Dim != table.Dim)
                failure ??= new InvalidDataException($"Node '{source.Node}' exported rows of dim {source.Header.Dim} for table '{table.Name}' of dim {table.Dim}.");
        }
        if (failure is null && problem.IsNone && Array.IndexOf(sources, null) < 0)
            return (Over(sources, storage.CreateSpoolFile(), table.Name, table.Schema), default);

        foreach (ExportSource? source in sources)
            if (source is not null) await source.DisposeAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return (null, problem.IsNone ? new ProtocolError(503, ProblemCodes.Unavailable, "The export was stopped before every node's part was ready.") : problem);
    }

    /// <summary>The merge of opened sources of one table, its order spooled to <paramref name="order"/>; it owns both.</summary>
    internal static MergedExport Over(ExportSource[] sources, FileStream order, string table, TableSchema schema)
    {
        long rows = 0;
        foreach (ExportSource source in sources) rows += source.Header.Count;
        return new MergedExport(sources, order, SafetensorsHeader.Create(table, schema, rows));
    }

    /// <summary>
    /// Writes the merged file: the prefix, the keys merged in order (noting each key's node), then each row copied
    /// from its node's stream in that order.
    /// </summary>
    /// <exception cref="InvalidDataException">A node sent a key another node also sent, or fewer bytes than its header promised.</exception>
    public async Task WriteToAsync(Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        byte[] output = ArrayPool<byte>.Shared.Rent(OutputBytes);
        byte[] order = ArrayPool<byte>.Shared.Rent(OrderChunk);
        try
        {
            await destination.WriteAsync(Header.Prefix, cancellationToken).ConfigureAwait(false);
            await MergeKeysAsync(destination, output, order, cancellationToken).ConfigureAwait(false);
            await CopyRowsAsync(destination, output, order, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(output);
            ArrayPool<byte>.Shared.Return(order);
        }
    }

    /// <summary>Closes the nodes' streams and deletes the merge order.</summary>
    public void Dispose()
    {
        foreach (ExportSource source in _sources) source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _order.Dispose();
    }

    private async Task MergeKeysAsync(Stream destination, byte[] output, byte[] order, CancellationToken cancellationToken)
    {
        // live[i]: source i has a key in Key not yet written. At most a handful of nodes: a linear scan for the
        // smallest is cheaper than a heap.
        var live = new bool[_sources.Length];
        for (int i = 0; i < _sources.Length; i++) live[i] = await _sources[i].NextKeyAsync(cancellationToken).ConfigureAwait(false);
        int filled = 0, ordered = 0;
        long written = 0;
        ulong previous = 0;
        while (true)
        {
            int next = -1;
            for (int i = 0; i < _sources.Length; i++)
                if (live[i] && (next < 0 || _sources[i].Key < _sources[next].Key)) next = i;
            if (next < 0) break;
            ExportSource source = _sources[next];
            if (written > 0 && source.Key <= previous)
                throw new InvalidDataException($"Key {source.Key} came from node '{source.Node}' after an equal or greater key from another node: a key held by two nodes cannot be exported as one file.");
            previous = source.Key;
            BinaryPrimitives.WriteUInt64LittleEndian(output.AsSpan(filled), source.Key);
            filled += sizeof(ulong);
            order[ordered++] = (byte)next;
            written++;
            if (filled == OutputBytes)
            {
                await destination.WriteAsync(output.AsMemory(0, filled), cancellationToken).ConfigureAwait(false);
                filled = 0;
            }
            if (ordered == OrderChunk)
            {
                await _order.WriteAsync(order.AsMemory(0, ordered), cancellationToken).ConfigureAwait(false);
                ordered = 0;
            }
            live[next] = source.TryNextKey(out bool ended) || (!ended && await source.NextKeyAsync(cancellationToken).ConfigureAwait(false));
        }
        if (filled > 0) await destination.WriteAsync(output.AsMemory(0, filled), cancellationToken).ConfigureAwait(false);
        if (ordered > 0) await _order.WriteAsync(order.AsMemory(0, ordered), cancellationToken).ConfigureAwait(false);
        if (written != Header.Count) throw new InvalidDataException($"The nodes sent {written} keys where their headers promised {Header.Count}.");
        await _order.FlushAsync(cancellationToken).ConfigureAwait(false);
        _order.Position = 0;
    }

    private async Task CopyRowsAsync(Stream destination, byte[] output, byte[] order, CancellationToken cancellationToken)
    {
        int rowBytes = Header.Dim * sizeof(float);
        int filled = 0;
        while (true)
        {
            int count = await _order.ReadAsync(order.AsMemory(0, OrderChunk), cancellationToken).ConfigureAwait(false);
            if (count == 0) break;
            for (int k = 0; k < count; k++)
            {
                if (OutputBytes - filled < rowBytes)
                {
                    await destination.WriteAsync(output.AsMemory(0, filled), cancellationToken).ConfigureAwait(false);
                    filled = 0;
                }
                ExportSource source = _sources[order[k]];
                Span<byte> row = output.AsSpan(filled, rowBytes);
                if (!source.TryCopyRow(row))
                {
                    await source.FillRowAsync(cancellationToken).ConfigureAwait(false);
                    source.TryCopyRow(output.AsSpan(filled, rowBytes));
                }
                filled += rowBytes;
            }
        }
        if (filled > 0) await destination.WriteAsync(output.AsMemory(0, filled), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>This node's own export, read through a pipe as the peers' arrive over HTTP.</summary>
    private static async Task<ExportSource> OpenLocalAsync(string node, INodeStorage storage, TableHandle table, int runKeys, CancellationToken cancellationToken)
    {
        TableExport export = storage.PrepareExport(table, runKeys, cancellationToken);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20));
        var stop = new CancellationTokenSource();
        Task pump = PumpAsync(export, pipe.Writer, stop.Token);
        return await ExportSource.OpenAsync(node, pipe.Reader.AsStream(), export.Length, async () =>
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await pipe.Reader.CompleteAsync().ConfigureAwait(false);
            await pump.ConfigureAwait(false);
            export.Dispose();
            stop.Dispose();
        }, cancellationToken).ConfigureAwait(false);
    }

    private static async Task PumpAsync(TableExport export, PipeWriter writer, CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            await export.WriteToAsync(writer.AsStream(leaveOpen: true), cancellationToken).ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The reader sees the failure as its stream's; a stop asked for by the reader needs no report.
            await writer.CompleteAsync(e).ConfigureAwait(false);
        }
    }

    /// <summary>A peer's export of its own rows, its reply's headers in, its body streaming.</summary>
    private static async Task<ExportSource> OpenPeerAsync(PeerHttp peers, string node, string address, string table, CancellationToken cancellationToken)
    {
        HttpResponseMessage reply;
        try
        {
            reply = await peers.SendBulkAsync(new HttpRequestMessage(HttpMethod.Get, new Uri($"http://{address}/v1/tables/{table}/export?scope=node")), cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new PeerProblemException(PeerReplies.Unreachable(node, address, e));
        }
        try
        {
            if (!reply.IsSuccessStatusCode) throw new PeerProblemException(await PeerReplies.ProblemAsync(reply, node, cancellationToken).ConfigureAwait(false));
            long length = reply.Content.Headers.ContentLength ?? throw new InvalidDataException($"Node '{node}' sent its export without a Content-Length.");
            Stream body = await reply.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return await ExportSource.OpenAsync(node, body, length, () =>
            {
                reply.Dispose();
                return ValueTask.CompletedTask;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            reply.Dispose();
            throw;
        }
    }
}

/// <summary>A node refused or could not be reached while a table was being moved; <see cref="Error"/> is the client's answer.</summary>
internal sealed class PeerProblemException(ProtocolError error) : Exception(error.Detail)
{
    /// <summary>The problem to answer with.</summary>
    public ProtocolError Error { get; } = error;
}
