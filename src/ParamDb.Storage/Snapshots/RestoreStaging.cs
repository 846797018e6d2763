using Microsoft.Extensions.Logging;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Snapshots;

/// <summary>
/// Makes a restore all or nothing across a crash. The snapshot is first copied whole into <c>DATA/restore/</c>,
/// and only then is <c>restore/READY</c> written. The next <see cref="ParamStore.Open"/> of the data directory
/// (right away on a live restore, or at the next start after a crash) finishes the swap: every step below can be
/// repeated, so a crash at any point is finished by the start after it.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>No <c>READY</c>: the copy never finished; <c>restore/</c> is deleted and the node keeps its data.</item>
/// <item><c>READY</c>: for <c>checkpoints/</c> and <c>log/</c> still in <c>restore/</c>, the node's own folder
/// moves to <c>restore-old/</c> and the snapshot's takes its place; the node's <c>wal/</c> moves aside too (its
/// records follow a state that is gone). Then <c>restore/</c> goes.</item>
/// <item><c>restore-old/</c> is deleted once the restored store has opened, so a snapshot that fails to open
/// can still be rolled back (<see cref="RollBack"/>).</item>
/// </list>
/// </remarks>
internal static class RestoreStaging
{
    /// <summary>The folders that make up a store's state, in the order they are swapped.</summary>
    private static readonly string[] StateFolders = ["checkpoints", "log"];

    public static string StagingDirectory(string root) => Path.Combine(root, "restore");

    public static string ReadyMarker(string root) => Path.Combine(StagingDirectory(root), "READY");

    private static string OldDirectory(string root) => Path.Combine(root, "restore-old");

    /// <summary>Finishes (or discards) a restore staged in <paramref name="root"/>; nothing when none is.</summary>
    /// <returns>True when a restore was finished.</returns>
    public static bool RollForward(string root, ILogger logger)
    {
        string staged = StagingDirectory(root);
        if (!Directory.Exists(staged)) return false;
        if (!File.Exists(ReadyMarker(root)))
        {
            Directory.Delete(staged, recursive: true);
            logger.RestoreStagingDiscarded(staged);
            return false;
        }
        string old = OldDirectory(root);
        Directory.CreateDirectory(old);
        foreach (string folder in StateFolders)
        {
            string incoming = Path.Combine(staged, folder);
            if (!Directory.Exists(incoming)) continue;   // moved by an earlier attempt
            MoveAside(Path.Combine(root, folder), Path.Combine(old, folder));
            Directory.Move(incoming, Path.Combine(root, folder));
        }
        MoveAside(Path.Combine(root, "wal"), Path.Combine(old, "wal"));
        // The moves must last before the staged copy goes: after a power loss, recovery finds either the old
        // state or the new one, never neither.
        FileSync.Directory(root);
        FileSync.Directory(old);
        Directory.Delete(staged, recursive: true);
        logger.RestoreRolledForward(root);
        return true;
    }

    /// <summary>Puts back the state a restore moved aside, after the restored store failed to open.</summary>
    public static void RollBack(string root)
    {
        string old = OldDirectory(root);
        if (!Directory.Exists(old)) return;
        foreach (string folder in (string[])[.. StateFolders, "wal"])
        {
            string target = Path.Combine(root, folder);
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            string kept = Path.Combine(old, folder);
            if (Directory.Exists(kept)) Directory.Move(kept, target);
        }
        Directory.Delete(old, recursive: true);
    }

    /// <summary>Deletes the state a finished restore replaced, once the restored store is open.</summary>
    public static void DropOld(string root)
    {
        string old = OldDirectory(root);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    private static void MoveAside(string current, string aside)
    {
        if (!Directory.Exists(current)) return;
        if (Directory.Exists(aside)) Directory.Delete(aside, recursive: true);   // left by an attempt that crashed after moving it
        Directory.Move(current, aside);
    }
}
