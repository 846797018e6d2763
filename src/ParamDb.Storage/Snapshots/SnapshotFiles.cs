using System.Text.Json;
using ParamDb.Protocol;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Snapshots;

/// <summary>
/// The files of one snapshot: <c>snapshot.json</c> (its <see cref="SnapshotInfo"/>), <c>log/hlog.log.N</c> (the
/// hybrid-log segments from the log's begin address on) and <c>checkpoints/</c> (the one checkpoint, manifest
/// included). The same layout as a data directory, so a restore moves the two folders into place and a reader
/// opens the snapshot as a store.
/// </summary>
internal static class SnapshotFiles
{
    public const string InfoFile = "snapshot.json";

    /// <summary>
    /// Copies a pinned checkpoint and the log segments it reads into <paramref name="target"/>, fsynced: a
    /// snapshot is a save point, whatever the node's durability mode.
    /// </summary>
    /// <remarks>
    /// Copies past the page cache (<see cref="DirectFile"/>), whose new pages cost more here than the disk. Copies,
    /// not hard links: FASTER's recovery of a snapshot checkpoint writes the checkpoint's in-memory pages
    /// back into the log's segment files, and a recovery of an older checkpoint rewrites pages of segments that a
    /// newer one reads; a link would let either side change the other's bytes. Segments the live log appends to
    /// during the copy may come out torn above the checkpoint's flushed address; recovery overwrites that part
    /// from the checkpoint's own snapshot file.
    /// </remarks>
    public static SnapshotInfo Copy(CheckpointImage image, string name, string target)
    {
        string checkpoints = Path.Combine(target, "checkpoints");
        foreach (string kind in (string[])["cpr-checkpoints", "index-checkpoints"])
            CopyTree(Path.Combine(image.CheckpointDirectory, kind, image.Token.ToString()), Path.Combine(checkpoints, kind, image.Token.ToString()));
        string log = Path.Combine(target, "log");
        Directory.CreateDirectory(log);
        foreach (string segment in Directory.GetFiles(image.LogDirectory, "hlog.log.*"))
        {
            if (!long.TryParse(Path.GetExtension(segment).AsSpan(1), out long number) || number < image.FirstSegment) continue;
            DirectFile.Copy(segment, Path.Combine(log, Path.GetFileName(segment)));
        }
        FileSync.Tree(target);
        long rows = 0;
        foreach (SnapshotTable table in image.Contents.Tables) rows += table.Rows;
        var info = new SnapshotInfo
        {
            Name = name,
            CreatedAt = image.CompletedAt,
            Tables = image.Contents.Tables,
            Rows = rows,
            Workers = image.Contents.Workers,
            Bytes = TreeBytes(target),
        };
        WriteInfo(target, info);
        return info;
    }

    /// <summary>Copies the snapshot's state folders into <paramref name="target"/> (a restore's staging), fsynced.</summary>
    public static void CopyState(string snapshot, string target)
    {
        CopyTree(Path.Combine(snapshot, "checkpoints"), Path.Combine(target, "checkpoints"));
        CopyTree(Path.Combine(snapshot, "log"), Path.Combine(target, "log"));
        FileSync.Tree(target);
    }

    /// <summary>Checks the snapshot's checkpoint against its manifest (every file's length and CRC-32C).</summary>
    /// <exception cref="InvalidDataException">A file is missing or damaged; the message names it.</exception>
    public static void Verify(string snapshot)
    {
        string checkpoints = Path.Combine(snapshot, "checkpoints");
        string[] tokens = Directory.Exists(Path.Combine(checkpoints, "cpr-checkpoints")) ? Directory.GetDirectories(Path.Combine(checkpoints, "cpr-checkpoints")) : [];
        if (tokens.Length != 1 || !Guid.TryParse(Path.GetFileName(tokens[0]), out Guid token))
            throw new InvalidDataException($"Snapshot {snapshot} should hold exactly one checkpoint under checkpoints/cpr-checkpoints/ and holds {tokens.Length}.");
        if (CheckpointManifest.Check(checkpoints, token, out string? problem) != ManifestCheck.Valid)
            throw new InvalidDataException($"Snapshot {snapshot} is damaged: {problem ?? "its checkpoint has no manifest"}.");
    }

    /// <summary>Reads <c>snapshot.json</c>; throws when it is missing or unreadable.</summary>
    public static SnapshotInfo ReadInfo(string directory)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(directory, InfoFile));
        return JsonSerializer.Deserialize(bytes, ProtocolJson.Default.SnapshotInfo)
            ?? throw new InvalidDataException($"{Path.Combine(directory, InfoFile)} holds no snapshot.");
    }

    /// <summary>Writes a small file and fsyncs it.</summary>
    public static void WriteSynced(string path, ReadOnlySpan<byte> bytes)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        file.Write(bytes);
        file.Flush(flushToDisk: true);
        FileSync.Directory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    private static void WriteInfo(string directory, SnapshotInfo info) =>
        WriteSynced(Path.Combine(directory, InfoFile), JsonSerializer.SerializeToUtf8Bytes(info, ProtocolJson.Default.SnapshotInfo));

    private static void CopyTree(string source, string target)
    {
        if (!Directory.Exists(source)) throw new DirectoryNotFoundException($"{source} is missing.");
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source)) DirectFile.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        foreach (string folder in Directory.GetDirectories(source)) CopyTree(folder, Path.Combine(target, Path.GetFileName(folder)));
    }

    private static long TreeBytes(string directory)
    {
        long bytes = 0;
        foreach (string file in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)) bytes += new FileInfo(file).Length;
        return bytes;
    }
}
