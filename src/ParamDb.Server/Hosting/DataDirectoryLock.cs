namespace ParamDb.Server.Hosting;

/// <summary>
/// An exclusive lock file in the data directory: two processes on one FASTER log would corrupt it,
/// so the second one refuses to start and says which directory is taken.
/// </summary>
public static class DataDirectoryLock
{
    /// <summary>Name of the lock file inside the data directory.</summary>
    public const string FileName = "paramdb.lock";

    /// <summary>Takes the lock; dispose the stream to release it.</summary>
    public static FileStream Acquire(string directory)
    {
        var path = Path.Combine(directory, FileName);
        try
        {
            // FileShare.None is an advisory flock on Unix in .NET; held for the life of the process, and
            // released by the kernel when the process dies, even by SIGKILL.
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"The data directory {directory} is in use by another ParamDb process ({path} is locked).", e);
        }
    }
}
