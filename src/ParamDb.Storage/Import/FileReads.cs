using Microsoft.Win32.SafeHandles;

namespace ParamDb.Storage.Import;

/// <summary>
/// Positional reads of a spooled file (<see cref="RandomAccess"/>), for the import's check and a cluster's routed
/// import: several readers may share one handle, since no read moves a file position.
/// </summary>
public static class FileReads
{
    /// <summary>Fills <paramref name="destination"/> from <paramref name="offset"/>.</summary>
    /// <exception cref="IOException">The file ends first: it changed while it was read.</exception>
    public static void ReadExactly(SafeFileHandle file, Span<byte> destination, long offset)
    {
        if (ReadUpTo(file, destination, offset) != destination.Length)
            throw new IOException($"The spooled file ended before byte {offset + destination.Length}: it changed while it was read.");
    }

    /// <summary>Reads until <paramref name="destination"/> is full or the file ends; the bytes read.</summary>
    public static int ReadUpTo(SafeFileHandle file, Span<byte> destination, long offset)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int read = RandomAccess.Read(file, destination[total..], offset + total);
            if (read == 0) break;
            total += read;
        }
        return total;
    }
}
