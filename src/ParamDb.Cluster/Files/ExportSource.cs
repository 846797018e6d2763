using System.Buffers;
using System.Buffers.Binary;
using ParamDb.Protocol;
using ParamDb.Protocol.Safetensors;

namespace ParamDb.Cluster.Files;

/// <summary>
/// One node's export as the merge reads it (<see cref="MergedExport"/>): a safetensors stream whose prefix has been
/// parsed, then its keys one at a time, then its rows one at a time, through one pooled window. Reads are
/// synchronous while the window holds what is asked for; only a refill waits.
/// </summary>
internal sealed class ExportSource : IAsyncDisposable
{
    /// <summary>Bytes of the read window at least: 256 KiB, 32 Ki keys; a wider row (dim above 65,536 / 4) widens it.</summary>
    private const int WindowBytes = 256 * 1024;

    private readonly Stream _body;
    private readonly Func<ValueTask> _close;
    private readonly byte[] _window;
    private int _start, _end;
    private long _keysLeft;

    private ExportSource(string node, Stream body, Func<ValueTask> close, SafetensorsHeader header, byte[] window, int start, int end)
    {
        Node = node;
        _body = body;
        _close = close;
        Header = header;
        _window = window;
        _start = start;
        _end = end;
        _keysLeft = header.Count;
    }

    /// <summary>The node the export comes from.</summary>
    public string Node { get; }

    /// <summary>The node's file prefix: its row count and dim.</summary>
    public SafetensorsHeader Header { get; }

    /// <summary>The key last read by <see cref="TryNextKey"/> or <see cref="NextKeyAsync"/>.</summary>
    public ulong Key { get; private set; }

    /// <summary>Bytes of one row, 4·dim.</summary>
    public int RowBytes => Header.Dim * sizeof(float);

    /// <summary>
    /// Reads and checks a node's prefix from <paramref name="body"/>, a file of <paramref name="length"/> bytes.
    /// </summary>
    /// <param name="node">The node's id, for errors.</param>
    /// <param name="body">The file, from its first byte.</param>
    /// <param name="length">The file's length, from its Content-Length.</param>
    /// <param name="close">Closes the body (and whatever produces it) when the source is disposed.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <exception cref="InvalidDataException">The prefix is not an export's.</exception>
    public static async Task<ExportSource> OpenAsync(string node, Stream body, long length, Func<ValueTask> close, CancellationToken cancellationToken)
    {
        byte[] window = ArrayPool<byte>.Shared.Rent(WindowBytes);
        try
        {
            int end = await ReadAtLeastAsync(body, window, 0, SafetensorsHeader.LengthFieldSize, node, cancellationToken).ConfigureAwait(false);
            if (!SafetensorsHeader.TryReadHeaderLength(window.AsSpan(0, end), length, out int headerLength, out ProtocolError error))
                throw new InvalidDataException($"Node '{node}' sent an export that does not parse: {error.Detail}");
            int prefixLength = SafetensorsHeader.LengthFieldSize + headerLength;
            byte[] prefix = prefixLength <= window.Length ? window : new byte[prefixLength];
            if (prefix != window) window.AsSpan(0, end).CopyTo(prefix);
            if (end < prefixLength) end = await ReadAtLeastAsync(body, prefix, end, prefixLength, node, cancellationToken).ConfigureAwait(false);
            if (!SafetensorsHeader.TryParse(prefix.AsSpan(0, end), length, out SafetensorsHeader? header, out error))
                throw new InvalidDataException($"Node '{node}' sent an export that does not parse: {error.Detail}");
            int rowBytes = header.Dim * sizeof(float);
            if (rowBytes > window.Length || prefix != window)
            {
                // A row wider than the window, or a prefix that was not: start a window that fits both cases.
                byte[] wider = ArrayPool<byte>.Shared.Rent(Math.Max(WindowBytes, 2 * rowBytes));
                int rest = end - prefixLength;
                prefix.AsSpan(prefixLength, rest).CopyTo(wider);
                ArrayPool<byte>.Shared.Return(window);
                window = wider;
                return new ExportSource(node, body, close, header, window, 0, rest);
            }
            return new ExportSource(node, body, close, header, window, prefixLength, end);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(window);
            await close().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Reads the next key into <see cref="Key"/> when the window holds it; false when it needs <see cref="NextKeyAsync"/> (or none is left).</summary>
    public bool TryNextKey(out bool ended)
    {
        ended = _keysLeft == 0;
        if (ended || _end - _start < sizeof(ulong)) return false;
        Key = BinaryPrimitives.ReadUInt64LittleEndian(_window.AsSpan(_start));
        _start += sizeof(ulong);
        _keysLeft--;
        return true;
    }

    /// <summary>Reads the next key into <see cref="Key"/>, refilling the window; false when the keys have ended.</summary>
    public async ValueTask<bool> NextKeyAsync(CancellationToken cancellationToken)
    {
        if (TryNextKey(out bool ended)) return true;
        if (ended) return false;
        await FillAsync(sizeof(ulong), cancellationToken).ConfigureAwait(false);
        return TryNextKey(out _);
    }

    /// <summary>Copies the next row into <paramref name="destination"/> (<see cref="RowBytes"/> bytes) when the window holds it.</summary>
    public bool TryCopyRow(Span<byte> destination)
    {
        int rowBytes = RowBytes;
        if (_end - _start < rowBytes) return false;
        _window.AsSpan(_start, rowBytes).CopyTo(destination);
        _start += rowBytes;
        return true;
    }

    /// <summary>Refills the window until it holds a row.</summary>
    public ValueTask FillRowAsync(CancellationToken cancellationToken) => FillAsync(RowBytes, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        ArrayPool<byte>.Shared.Return(_window);
        await _close().ConfigureAwait(false);
    }

    private async ValueTask FillAsync(int need, CancellationToken cancellationToken)
    {
        int held = _end - _start;
        _window.AsSpan(_start, held).CopyTo(_window);
        _start = 0;
        _end = await ReadAtLeastAsync(_body, _window, held, need, Node, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads into <paramref name="buffer"/> from <paramref name="filled"/> until at least <paramref name="need"/> bytes are there; returns how many are.</summary>
    private static async ValueTask<int> ReadAtLeastAsync(Stream body, byte[] buffer, int filled, int need, string node, CancellationToken cancellationToken)
    {
        if (filled >= need) return filled;
        int read = await body.ReadAtLeastAsync(buffer.AsMemory(filled), need - filled, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (filled + read < need) throw new InvalidDataException($"Node '{node}''s export ended early, after its header promised more.");
        return filled + read;
    }
}
