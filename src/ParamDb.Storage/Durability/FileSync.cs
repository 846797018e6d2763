using System.Runtime.InteropServices;

namespace ParamDb.Storage.Durability;

/// <summary>
/// fsync for files written by others (FASTER's devices, finished checkpoints, copied snapshots) and for the
/// directories that name them.
/// </summary>
/// <remarks>
/// A file's fsync makes its bytes durable, not its name: a file created or renamed into place also needs its
/// directory synced, or a power loss can take the entry, and with it the file, after the write was reported
/// durable.
/// </remarks>
internal static class FileSync
{
    /// <summary>fsyncs one file.</summary>
    public static void File(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        file.Flush(flushToDisk: true);
    }

    /// <summary>
    /// fsyncs every file below <paramref name="directory"/>, then every directory, itself included (nothing when
    /// it does not exist). The directory's own entry in its parent is the caller's to sync.
    /// </summary>
    public static void Tree(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) return;
        foreach (string path in System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)) File(path);
        foreach (string path in System.IO.Directory.EnumerateDirectories(directory, "*", SearchOption.AllDirectories)) Directory(path);
        Directory(directory);
    }

    /// <summary>
    /// fsyncs a directory, so the entries created, renamed or removed in it are durable. On Windows, which has no
    /// such call and journals names itself, nothing.
    /// </summary>
    /// <exception cref="IOException">The directory could not be opened or synced; the message names it.</exception>
    public static void Directory(string path)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Posix.Open(path, OperatingSystem.IsLinux() ? Posix.ReadOnly | Posix.CloseOnExec : Posix.ReadOnly);
        if (fd < 0) throw new IOException($"Could not open the directory {path} to sync it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Posix.Fsync(fd) != 0) throw new IOException($"Could not sync the directory {path} (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            Posix.Close(fd);
        }
    }
}
