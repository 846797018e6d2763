using System.Runtime.InteropServices;

namespace ParamDb.Storage.Durability;

/// <summary>
/// The few libc calls and open flags the durability code needs that .NET does not expose: opening a directory
/// (to fsync it) or a file with O_DIRECT, and the page-cache hints the write-ahead log gives.
/// </summary>
internal static partial class Posix
{
    public const int ReadOnly = 0;        // O_RDONLY
    public const int ReadWrite = 2;       // O_RDWR
    public const int CloseOnExec = 0x80000;   // O_CLOEXEC on Linux, x64 and arm64 alike

    /// <summary>O_DIRECT on Linux, which differs by architecture; 0 where it is not known here.</summary>
    public static int DirectFlag => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 0x4000,
        Architecture.Arm64 => 0x10000,
        _ => 0,
    };

    public const int FadviseDontNeed = 4;         // POSIX_FADV_DONTNEED on Linux; length 0 means to the end
    public const uint SyncFileRangeWrite = 2;     // SYNC_FILE_RANGE_WRITE: start writeback, do not wait for it

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    public static partial int Fadvise(int fd, long offset, long length, int advice);

    [LibraryImport("libc", EntryPoint = "sync_file_range")]
    public static partial int SyncFileRange(int fd, long offset, long length, uint flags);
}
