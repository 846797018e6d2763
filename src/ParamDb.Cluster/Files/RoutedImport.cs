using System.Buffers;
using System.Net;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Protocol.Safetensors;
using ParamDb.Storage;
using ParamDb.Storage.Import;

namespace ParamDb.Cluster.Files;

/// <summary>What one node's part of a routed import did: rows written, non-finite values among them, or the problem.</summary>
/// <param name="Rows">Rows the node wrote.</param>
/// <param name="NonFiniteValues">NaN and ±Infinity values among them (tables that allow them).</param>
/// <param name="Error">Why the node's part did not complete; none when it did.</param>
public readonly record struct ImportPart(long Rows, long NonFiniteValues, ProtocolError Error);

/// <summary>
/// A table import on a cluster (docs/cluster.md, "Export and import"): the checked file is split by the ring into
/// one file per node holding that node's rows (keys still ascending), this node applies its own, and each other
/// node gets its file as <c>POST /v1/tables/{t}/import?scope=node</c> with the ring epoch it was cut for.
/// </summary>
/// <remarks>
/// One pass over the keys notes each key's node (a byte a key, spooled under DATA/tmp); each node's file is then
/// written straight from the spooled import while it is sent, so nothing but this node's part is copied to disk.
/// Like one node's import it is not atomic: a node that fails leaves the others' rows written, and the import is
/// idempotent, so running it again completes it.
/// </remarks>
public sealed class RoutedImport : IDisposable
{
    /// <summary>Keys assigned at once in the first pass: 64 Ki keys.</summary>
    private const int AssignChunk = 64 * 1024;

    /// <summary>Bytes of a slice's values read at once: 1 MiB.</summary>
    private const int ValuesChunkBytes = 1 << 20;

    private readonly ClusterRing _ring;
    private readonly SafeFileHandle _file;
    private readonly SafetensorsHeader _header;
    private readonly FileStream _owners;
    private readonly long[] _counts;
    private readonly string _table;

    private RoutedImport(ClusterRing ring, SafeFileHandle file, SafetensorsHeader header, FileStream owners, long[] counts, string table)
    {
        _ring = ring;
        _file = file;
        _header = header;
        _owners = owners;
        _counts = counts;
        _table = table;
    }

    /// <summary>Rows that go to node <paramref name="node"/> (an index of the ring).</summary>
    public long RowsOf(int node) => _counts[node];

    /// <summary>
    /// Splits a checked import file by <paramref name="ring"/> and applies every part: this node's through
    /// <paramref name="applyLocal"/>, the others' over HTTP, all at once.
    /// </summary>
    /// <param name="member">This node's membership: its id, peers and their addresses.</param>
    /// <param name="ring">The ring to cut by; its epoch goes with each part, and a node of another epoch refuses it (421).</param>
    /// <param name="storage">Where this node's part and the key owners are spooled.</param>
    /// <param name="table">The table, already created.</param>
    /// <param name="file">The spooled import file, flushed.</param>
    /// <param name="header">Its checked header.</param>
    /// <param name="applyLocal">Checks and applies this node's part, then waits until it is durable.</param>
    /// <param name="cancellationToken">Stops the parts between batches.</param>
    /// <returns>One entry per node of the ring that got rows, this one's included.</returns>
    public static async Task<ImportPart[]> ApplyAsync(
        ClusterMember member, ClusterRing ring, INodeStorage storage, TableHandle table, SafeFileHandle file, SafetensorsHeader header,
        Func<TableImport, Task<ImportPart>> applyLocal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(member);
        ArgumentNullException.ThrowIfNull(ring);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(applyLocal);
        using RoutedImport split = await SplitAsync(ring, storage, table, file, header, cancellationToken).ConfigureAwait(false);
        int self = ring.NodeIndex(member.Identity.NodeId);
        var parts = new List<Task<ImportPart>>(ring.NodeCount);
        foreach ((string id, string http) in member.Others())
        {
            int node = ring.NodeIndex(id);
            if (node >= 0 && split.RowsOf(node) > 0) parts.Add(split.SendAsync(member.Peers, node, id, http, cancellationToken));
        }
        if (self >= 0 && split.RowsOf(self) > 0) parts.Add(split.ApplyLocalAsync(self, storage, applyLocal, cancellationToken));
        return await Task.WhenAll(parts).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => _owners.Dispose();

    /// <summary>The first pass: each key's node, one byte a key, and the rows per node.</summary>
    private static async Task<RoutedImport> SplitAsync(ClusterRing ring, INodeStorage storage, TableHandle table, SafeFileHandle file, SafetensorsHeader header, CancellationToken cancellationToken)
    {
        if (ring.NodeCount > byte.MaxValue) throw new NotSupportedException($"A routed import notes each key's node in a byte: {ring.NodeCount} nodes are too many.");
        FileStream owners = storage.CreateSpoolFile();
        ulong[] keys = ArrayPool<ulong>.Shared.Rent(AssignChunk);
        int[] nodeOfKey = ArrayPool<int>.Shared.Rent(AssignChunk);
        byte[] bytes = ArrayPool<byte>.Shared.Rent(AssignChunk);
        try
        {
            var counts = new long[ring.NodeCount];
            var chunkCounts = new int[ring.NodeCount];
            for (long row = 0; row < header.Count;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int take = (int)Math.Min(AssignChunk, header.Count - row);
                FileReads.ReadExactly(file, MemoryMarshal.AsBytes(keys.AsSpan(0, take)), header.KeysOffset + row * sizeof(ulong));
                KeySlicer.Assign(ring, table.RingHash, keys.AsSpan(0, take), nodeOfKey, chunkCounts);
                for (int i = 0; i < take; i++) bytes[i] = (byte)nodeOfKey[i];
                for (int n = 0; n < counts.Length; n++) counts[n] += chunkCounts[n];
                await owners.WriteAsync(bytes.AsMemory(0, take), cancellationToken).ConfigureAwait(false);
                row += take;
            }
            await owners.FlushAsync(cancellationToken).ConfigureAwait(false);
            return new RoutedImport(ring, file, header, owners, counts, table.Name);
        }
        catch
        {
            await owners.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(keys);
            ArrayPool<int>.Shared.Return(nodeOfKey);
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>Writes this node's part to its own spool file, checks it as any import is checked, and applies it.</summary>
    private async Task<ImportPart> ApplyLocalAsync(int self, INodeStorage storage, Func<TableImport, Task<ImportPart>> applyLocal, CancellationToken cancellationToken)
    {
        await using FileStream part = storage.CreateSpoolFile();
        await WritePartAsync(part, self, cancellationToken).ConfigureAwait(false);
        await part.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (!TableImport.TryCheck(part.SafeFileHandle, out TableImport? import, out ProtocolError error, cancellationToken))
            throw new InvalidDataException($"This node's part of the import does not check ({error.Detail}), though the whole file did.");
        return await applyLocal(import).ConfigureAwait(false);
    }

    /// <summary>Sends node <paramref name="node"/> its part and reads what it did.</summary>
    private async Task<ImportPart> SendAsync(PeerHttp peers, int node, string id, string http, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://{http}/v1/tables/{_table}/import?scope=node"))
        {
            Content = new PartContent(this, node),
        };
        request.Headers.Add(ParamDbHeaders.RingEpoch, _ring.Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            using HttpResponseMessage reply = await peers.SendBulkAsync(request, cancellationToken).ConfigureAwait(false);
            if (!reply.IsSuccessStatusCode) return new ImportPart(0, 0, await PeerReplies.ProblemAsync(reply, id, cancellationToken).ConfigureAwait(false));
            ImportReply? done = await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.ImportReply, cancellationToken).ConfigureAwait(false);
            return done is null
                ? new ImportPart(0, 0, new ProtocolError(503, ProblemCodes.Unavailable, $"Node '{id}' answered its part of the import with an empty body."))
                : new ImportPart(done.Rows, done.NonFiniteValues, default);
        }
        catch (HttpRequestException e)
        {
            return new ImportPart(0, 0, PeerReplies.Unreachable(id, http, e));
        }
    }

    /// <summary>The prefix of node <paramref name="node"/>'s part: the import's schema, that node's row count.</summary>
    private SafetensorsHeader PartHeader(int node) => SafetensorsHeader.Create(_table, _header.Schema, _counts[node]);

    /// <summary>Writes node <paramref name="node"/>'s part: a safetensors file of its rows alone, keys ascending.</summary>
    private async Task WritePartAsync(Stream destination, int node, CancellationToken cancellationToken)
    {
        SafetensorsHeader partHeader = PartHeader(node);
        await destination.WriteAsync(partHeader.Prefix, cancellationToken).ConfigureAwait(false);
        int rowBytes = _header.Dim * sizeof(float);
        // Keys first, then values: the same walk over the owners, once with 8-byte rows, once with 4·dim-byte rows.
        await WriteRowsAsync(destination, node, _header.KeysOffset, sizeof(ulong), AssignChunk, cancellationToken).ConfigureAwait(false);
        await WriteRowsAsync(destination, node, _header.ValuesOffset, rowBytes, Math.Clamp(ValuesChunkBytes / rowBytes, 1, AssignChunk), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Copies the rows of one section (keys or values) that belong to <paramref name="node"/>, a chunk of rows at a time.</summary>
    private async Task WriteRowsAsync(Stream destination, int node, long sectionOffset, int rowBytes, int chunkRows, CancellationToken cancellationToken)
    {
        byte[] owners = ArrayPool<byte>.Shared.Rent(chunkRows);
        byte[] rows = ArrayPool<byte>.Shared.Rent(chunkRows * rowBytes);
        try
        {
            for (long row = 0; row < _header.Count;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int take = (int)Math.Min(chunkRows, _header.Count - row);
                FileReads.ReadExactly(_owners.SafeFileHandle, owners.AsSpan(0, take), row);
                FileReads.ReadExactly(_file, rows.AsSpan(0, take * rowBytes), sectionOffset + row * rowBytes);
                int kept = Compact(owners.AsSpan(0, take), (byte)node, rows, rowBytes);
                if (kept > 0) await destination.WriteAsync(rows.AsMemory(0, kept * rowBytes), cancellationToken).ConfigureAwait(false);
                row += take;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(owners);
            ArrayPool<byte>.Shared.Return(rows);
        }
    }

    /// <summary>Moves the rows owned by <paramref name="node"/> to the front of <paramref name="rows"/>, in order; returns how many.</summary>
    private static int Compact(ReadOnlySpan<byte> owners, byte node, byte[] rows, int rowBytes)
    {
        int kept = 0;
        for (int i = 0; i < owners.Length; i++)
        {
            if (owners[i] != node) continue;
            if (kept != i) rows.AsSpan(i * rowBytes, rowBytes).CopyTo(rows.AsSpan(kept * rowBytes));
            kept++;
        }
        return kept;
    }

    /// <summary>A node's part as a request body of known length, written while it is sent.</summary>
    private sealed class PartContent : HttpContent
    {
        private readonly RoutedImport _import;
        private readonly int _node;

        public PartContent(RoutedImport import, int node)
        {
            _import = import;
            _node = node;
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(System.Net.Mime.MediaTypeNames.Application.Octet);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            _import.WritePartAsync(stream, _node, CancellationToken.None);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
            _import.WritePartAsync(stream, _node, cancellationToken);

        protected override bool TryComputeLength(out long length)
        {
            length = _import.PartHeader(_node).FileLength;
            return true;
        }
    }
}
