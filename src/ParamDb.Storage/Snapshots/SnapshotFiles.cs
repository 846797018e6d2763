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
    /// Copies past the page cache (<see cref="DirectFile"/>), whose new pages cost more here than the disk, and
    /// leaves all-zero blocks as holes (<see cref="CopySparse"/>): the hash index is mostly empty buckets. Copies,
    /// not hard links: FASTER's recovery of a snapshot checkpoint writes the checkpoint's in-memory pages
    /// back into the log's segment files, and a recovery of an older checkpoint rewrites pages of segments that a
    /// newer one reads; a link would let either side change the other's bytes. Segments the live log appends to
    /// during the copy may come out torn above the checkpoint's flushed address; recovery overwrites that part
    /// from the checkpoint's own snapshot file.
    /// </remarks>
    public static SnapshotInfo Copy(CheckpointImage image, string name, string target)
    {
        string checkpoints = Path.Combine(target, "checkpoints");
        long stored = 0;
        foreach (string kind in (string[])["cpr-checkpoints", "index-checkpoints"])
            stored += CopyTree(Path.Combine(image.CheckpointDirectory, kind, image.Token.ToString()), Path.Combine(checkpoints, kind, image.Token.ToString()));
        string log = Path.Combine(target, "log");
        Directory.CreateDirectory(log);
        foreach (string segment in Directory.GetFiles(image.LogDirectory, "hlog.log.*"))
        {
            if (!long.TryParse(Path.GetExtension(segment).AsSpan(1), out long number) || number < image.FirstSegment) continue;
            stored += CopySparse(segment, Path.Combine(log, Path.GetFileName(segment)));
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
            Bytes = stored,
        };
        WriteInfo(target, info);
        return info;
    }

    /// <summary>Copies the snapshot's state folders into <paramref name="target"/> (a restore's staging), fsynced.</summary>
    public static void CopyState(string snapshot, string target)
    {
        // Sparse as well: the restored store's checkpoint takes no more disk than the snapshot's.
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

    /// <summary>Copies a folder tree with <see cref="CopySparse"/>; the bytes stored.</summary>
    private static long CopyTree(string source, string target)
    {
        if (!Directory.Exists(source)) throw new DirectoryNotFoundException($"{source} is missing.");
        Directory.CreateDirectory(target);
        long stored = 0;
        foreach (string file in Directory.GetFiles(source)) stored += CopySparse(file, Path.Combine(target, Path.GetFileName(file)));
        foreach (string folder in Directory.GetDirectories(source)) stored += CopyTree(folder, Path.Combine(target, Path.GetFileName(folder)));
        return stored;
    }

    /// <summary>
    /// Bytes per hole-or-write decision: 4 KiB, the file system block (a hole is made of whole blocks) and a
    /// multiple of <see cref="DirectFile.Alignment"/>; it is 64 hash buckets, so a table of r rows dirties at most
    /// r × 4 KiB of a mostly empty bucket array. Runs of non-zero blocks are written as one request.
    /// </summary>
    internal const int SparseBlock = 4 << 10;

    /// <summary>
    /// Copies a file past the page cache and leaves every all-zero 4 KiB block of it as a hole: the copy reads
    /// back the same bytes (a hole reads as zeros, so the manifest's CRC-32C still matches) but only the other
    /// blocks take disk space. What this is for: FASTER writes its whole hash index into every full checkpoint,
    /// 64 bytes per bucket, and the bucket count follows the memory budget (<c>--memory</c> / 16), not the rows:
    /// at 1 GiB that is 1 Mi buckets, a 64 MiB <c>ht.dat.0</c> that a 4-row table leaves 99.9 % zeros. The
    /// snapshot then takes about as much disk as its non-empty buckets and log pages (docs/snapshots.md).
    /// </summary>
    /// <returns>The bytes stored: the file's length less its holes.</returns>
    internal static long CopySparse(string source, string target)
    {
        using DirectFile from = DirectFile.Open(source, FileMode.Open, FileAccess.Read);
        long length = from.Length;
        // The length first, so trailing zero blocks are a hole too; the blocks with data are written into it.
        using (var sized = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None)) sized.SetLength(length);
        using DirectFile to = DirectFile.Open(target, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        AlignedBuffer buffer = AlignedBuffer.Rent();
        long stored = 0;
        try
        {
            long offset = 0;
            int n;
            while ((n = from.ReadFull(buffer.Span, offset)) > 0)
            {
                int run = -1;   // start of the current run of non-zero blocks
                for (int at = 0; ;)
                {
                    int end = Math.Min(at + SparseBlock, n);
                    bool zero = at == n || !buffer.Span[at..end].ContainsAnyExcept((byte)0);   // vectorised
                    if (!zero && run < 0) run = at;
                    if (zero && run >= 0)
                    {
                        // A last piece that ends inside a 512-byte sector goes through the page cache (DirectFile.Write).
                        to.Write(buffer.Span[run..at], offset + run);
                        stored += at - run;
                        run = -1;
                    }
                    if (at == n) break;
                    at = end;
                }
                offset += n;
                if (n < buffer.Span.Length) break;
            }
        }
        finally
        {
            AlignedBuffer.Return(buffer);
        }
        return stored;
    }
}
