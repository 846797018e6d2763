using System.Runtime.InteropServices;

namespace ParamDb.Storage.Export;

/// <summary>
/// Reads sorted keys front to back, from a run file or from the sort's buffer when the keys never left memory.
/// The caller gives the destination, so reading allocates nothing.
/// </summary>
internal sealed class SortedKeyReader : IDisposable
{
    private readonly FileStream? _file;
    private readonly ulong[] _memory = [];
    private readonly int _memoryCount;
    private int _memoryPosition;

    /// <summary>Reads the first <paramref name="count"/> keys of <paramref name="keys"/>.</summary>
    public SortedKeyReader(ulong[] keys, int count)
    {
        _memory = keys;
        _memoryCount = count;
    }

    /// <summary>Reads the file at <paramref name="path"/>: raw keys, 8 bytes each, read sequentially with no buffer of ours (reads are 32 KiB or more).</summary>
    public SortedKeyReader(string path) =>
        _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);

    /// <summary>Fills <paramref name="destination"/> with the next keys; returns how many, fewer only at the end (0 there).</summary>
    public int Read(Span<ulong> destination)
    {
        if (_file is null)
        {
            int n = Math.Min(destination.Length, _memoryCount - _memoryPosition);
            _memory.AsSpan(_memoryPosition, n).CopyTo(destination);
            _memoryPosition += n;
            return n;
        }
        Span<byte> bytes = MemoryMarshal.AsBytes(destination);
        int read = _file.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        if (read % sizeof(ulong) != 0)
            throw new InvalidDataException($"{_file.Name} ends in the middle of a key ({_file.Length} bytes); a run file holds whole 8-byte keys.");
        return read / sizeof(ulong);
    }

    /// <inheritdoc/>
    public void Dispose() => _file?.Dispose();
}
