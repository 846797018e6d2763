using Microsoft.Win32.SafeHandles;

namespace ParamDb.Storage.Durability;

/// <summary>
/// One write-ahead log segment open for appending. Used by one thread at a time (whichever holds the log's write
/// token).
/// </summary>
internal sealed class WalSegment : IDisposable
{
    private readonly SafeFileHandle _handle;

    private WalSegment(SafeFileHandle handle, string path)
    {
        _handle = handle;
        Path = path;
    }

    /// <summary>The segment's file.</summary>
    public string Path { get; }

    /// <summary>Bytes written.</summary>
    public long Length { get; private set; }

    /// <summary>Creates the segment file, which must not exist.</summary>
    public static WalSegment Create(string path) =>
        new(File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read), path);

    /// <summary>Appends <paramref name="bytes"/> at the end of the segment.</summary>
    /// <exception cref="IOException">The write failed; what reached the file is unknown.</exception>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        RandomAccess.Write(_handle, bytes, Length);
        Length += bytes.Length;
    }

    /// <summary>fsyncs the segment: its records and its length.</summary>
    public void Flush() => RandomAccess.FlushToDisk(_handle);

    /// <summary>Closes the file.</summary>
    public void Dispose() => _handle.Dispose();
}
