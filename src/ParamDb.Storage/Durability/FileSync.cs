namespace ParamDb.Storage.Durability;

/// <summary>fsync for files written by others (FASTER's devices, finished checkpoints), in <see cref="DurabilityMode.Fsync"/> mode.</summary>
internal static class FileSync
{
    /// <summary>fsyncs one file.</summary>
    public static void File(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        file.Flush(flushToDisk: true);
    }

    /// <summary>fsyncs every file below <paramref name="directory"/> (nothing when it does not exist).</summary>
    public static void Tree(string directory)
    {
        if (!Directory.Exists(directory)) return;
        foreach (string path in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)) File(path);
    }
}
