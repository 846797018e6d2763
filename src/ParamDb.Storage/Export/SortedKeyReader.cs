using System.Runtime.InteropServices;

namespace ParamDb.Storage.Export;

/// <summary>
/// Reads sorted keys front to back, from a run file or from the sort's buffer when the keys never left memory.
/// The caller gives the destination, so reading allocates nothing.
/// </summary>
internal sealed class SortedKeyReader : IDisposable
{
    private readonly FileStream? file;
    private readonly ulong[] memory = [];
    private readonly int memoryCount;
    private int memoryPosition;

    /// <summary>Reads the first <paramref name="count"/> keys of <paramref name="keys"/>.</summary>
    public SortedKeyReader(ulong[] keys, int count)
    {
        memory = keys;
        memoryCount = count;
    }

    /// <summary>Reads the file at <paramref name="path"/>: raw keys, 8 bytes each, read sequentially with no buffer of ours (reads are 32 KiB or more).</summary>
    public SortedKeyReader(string path) =>
        file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);

    /// <summary>Fills <paramref name="destination"/> with the next keys; returns how many, fewer only at the end (0 there).</summary>
    public int Read(Span<ulong> destination)
    {
        if (file is null)
        {
            int n = Math.Min(destination.Length, memoryCount - memoryPosition);
            memory.AsSpan(memoryPosition, n).CopyTo(destination);
            memoryPosition += n;
            return n;
        }
        Span<byte> bytes = MemoryMarshal.AsBytes(destination);
        int read = file.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        if (read % sizeof(ulong) != 0)
            throw new InvalidDataException($"{file.Name} ends in the middle of a key ({file.Length} bytes); a run file holds whole 8-byte keys.");
        return read / sizeof(ulong);
    }

    /// <inheritdoc/>
    public void Dispose() => file?.Dispose();
}
