using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ParamDb.Storage.Durability;

/// <summary>What checking a checkpoint against its manifest found.</summary>
internal enum ManifestCheck
{
    /// <summary>Every file the manifest lists is there, with its length and checksum.</summary>
    Valid,
    /// <summary>No manifest: the checkpoint never completed (the process died while writing it).</summary>
    Missing,
    /// <summary>A file is missing, shorter, longer or different: the checkpoint was complete and is now damaged.</summary>
    Damaged,
}

/// <summary>
/// The proof that a checkpoint completed, and the means to check it was not damaged since: the length and
/// CRC-32C of each of its files, written once FASTER reports the checkpoint durable. FASTER itself checks neither
/// its metadata nor its data, so a flipped bit in a snapshot would otherwise be served as a parameter value.
/// </summary>
/// <remarks>
/// <c>checkpoints/cpr-checkpoints/{token}/paramdb-manifest.json</c>, inside the folder FASTER purges with the
/// checkpoint. UTF-8 JSON, then a newline and the CRC-32C of the JSON bytes as 8 hex digits, so a torn or
/// edited manifest is damage too:
/// <code>
/// {"format":1,"token":"…","cut":1234,"completedAt":"2026-11-24T00:43:07Z",
///  "files":[{"path":"cpr-checkpoints/…/info.dat.0","length":512,"crc32c":3735928559}, …]}
/// 1a2b3c4d
/// </code>
/// Paths are relative to <c>checkpoints/</c>. Written to a temporary name and renamed, so a manifest is whole or
/// absent.
/// <para>Incremental checkpoints (FASTER's delta log: each one appends the rows changed since the previous one to
/// <c>delta.dat.0</c> in the base checkpoint's folder) get one manifest per version,
/// <c>paramdb-manifest.json.v{version}</c>: the base's files as the base manifest lists them, plus each file the base
/// did not have as a prefix (<c>"prefix":true</c>: its first <c>length</c> bytes must have the checksum, and the
/// file may be longer, because later increments append to it). <c>version</c> is FASTER's checkpoint version, what
/// recovery passes as <c>recoverTo</c>.</para>
/// </remarks>
internal static class CheckpointManifest
{
    public const string FileName = "paramdb-manifest.json";
    private const int Format = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static string LogFolder(string checkpoints, Guid token) => Path.Combine(checkpoints, "cpr-checkpoints", token.ToString());

    private static string IndexFolder(string checkpoints, Guid token) => Path.Combine(checkpoints, "index-checkpoints", token.ToString());

    /// <summary>
    /// fsyncs a checkpoint's files, FASTER's and the index's: <see cref="CheckpointFileDevice"/> does not sync them
    /// (the disk may still cache them), and a manifest must not vouch for data a power loss could still take.
    /// </summary>
    public static void Sync(string checkpoints, Guid token)
    {
        foreach (string folder in (string[])[LogFolder(checkpoints, token), IndexFolder(checkpoints, token)])
        {
            FileSync.Tree(folder);
            FileSync.Directory(Path.GetDirectoryName(folder)!);   // the folder's own name, new with this checkpoint
        }
    }

    private static string IncrementFile(string checkpoints, Guid token, long version) =>
        Path.Combine(LogFolder(checkpoints, token), FileName + ".v" + version.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// Bytes of FASTER's delta log (the increments) and of what the full checkpoint wrote, its snapshot and its
    /// hash index, in a checkpoint folder; a folder that never took an increment has no delta log (0).
    /// </summary>
    public static (long Delta, long Full) Sizes(string checkpoints, Guid token)
    {
        long delta = 0, full = 0;
        foreach (string file in Directory.EnumerateFiles(LogFolder(checkpoints, token)))
        {
            string name = Path.GetFileName(file);
            if (name.StartsWith("delta.", StringComparison.Ordinal)) delta += new FileInfo(file).Length;
            else if (name.StartsWith("snapshot.", StringComparison.Ordinal)) full += new FileInfo(file).Length;
        }
        string index = IndexFolder(checkpoints, token);
        if (Directory.Exists(index))
            foreach (string file in Directory.EnumerateFiles(index)) full += new FileInfo(file).Length;
        return (delta, full);
    }

    /// <summary>Whether the checkpoint has a manifest (whatever its state).</summary>
    public static bool Exists(string checkpoints, Guid token) => File.Exists(Path.Combine(LogFolder(checkpoints, token), FileName));

    /// <summary>
    /// Checksums a full checkpoint's files and writes its manifest. With <paramref name="sync"/> the files and the
    /// manifest are fsynced first (the <see cref="DurabilityMode.Fsync"/> mode), so a manifest never vouches for
    /// bytes still only in a volatile cache. Files <paramref name="written"/> vouches for are not read back.
    /// <paramref name="logPrefixes"/> is the flushed part of each hybrid-log segment the checkpoint stands on
    /// (<see cref="HybridLogChecksums"/>), listed as prefixes: FASTER appends to those files afterwards.
    /// </summary>
    public static void Write(string checkpoints, Guid token, long version, long cut, DateTimeOffset completedAt, bool sync, WrittenChecksums? written = null,
        IReadOnlyList<(string Path, long Length, uint Crc)>? logPrefixes = null)
    {
        var files = new List<ManifestFile>();
        AddLogPrefixes(checkpoints, files, logPrefixes);
        foreach (string folder in new[] { LogFolder(checkpoints, token), IndexFolder(checkpoints, token) })
        {
            if (!Directory.Exists(folder)) throw new IOException($"Checkpoint {token} has no folder {folder}.");
            foreach (string path in Directory.GetFiles(folder))
            {
                if (Path.GetFileName(path).StartsWith(FileName, StringComparison.Ordinal)) continue;
                if (sync) FileSync.File(path);
                (uint crc, long length) = written?.Of(path) ?? Crc32C.OfFile(path);
                files.Add(new ManifestFile(Path.GetRelativePath(checkpoints, path).Replace('\\', '/'), length, crc, Prefix: false));
            }
        }
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        Save(Path.Combine(LogFolder(checkpoints, token), FileName), new ManifestDocument(Format, token, cut, completedAt, files, version), sync);
    }

    /// <summary>
    /// Writes the manifest of an incremental checkpoint on top of <paramref name="token"/>'s full checkpoint: the
    /// base's files as its manifest lists them (not checksummed again), and the appended delta log as a prefix.
    /// Files <paramref name="written"/> vouches for are not read back.
    /// </summary>
    /// <exception cref="InvalidDataException">The base manifest is missing or damaged.</exception>
    public static void WriteIncrement(string checkpoints, Guid token, long version, long cut, DateTimeOffset completedAt, bool sync, WrittenChecksums? written = null,
        IReadOnlyList<(string Path, long Length, uint Crc)>? logPrefixes = null)
    {
        string basePath = Path.Combine(LogFolder(checkpoints, token), FileName);
        ManifestDocument baseManifest = Read(basePath, token, out string? problem)
            ?? throw new InvalidDataException($"Checkpoint {token} cannot take an increment: {problem ?? "it has no manifest"}.");
        // The base's own files; the log's prefixes are this version's, which reach at least as far.
        var files = new List<ManifestFile>();
        foreach (ManifestFile file in baseManifest.Files)
            if (!file.Path.StartsWith(LogPrefixPath, StringComparison.Ordinal)) files.Add(file);
        AddLogPrefixes(checkpoints, files, logPrefixes);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        foreach (ManifestFile file in files) listed.Add(file.Path);
        foreach (string path in Directory.GetFiles(LogFolder(checkpoints, token)))
        {
            string relative = Path.GetRelativePath(checkpoints, path).Replace('\\', '/');
            if (Path.GetFileName(path).StartsWith(FileName, StringComparison.Ordinal) || listed.Contains(relative)) continue;
            if (sync) FileSync.File(path);
            (uint crc, long length) = written?.Of(path) ?? Crc32C.OfFile(path);
            files.Add(new ManifestFile(relative, length, crc, Prefix: true));
        }
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        Save(IncrementFile(checkpoints, token, version), new ManifestDocument(Format, token, cut, completedAt, files, version), sync);
    }

    /// <summary>How a hybrid-log segment's path starts in a manifest: relative to <c>checkpoints/</c>, in <c>DATA/log/</c>.</summary>
    private const string LogPrefixPath = "../log/";

    private static void AddLogPrefixes(string checkpoints, List<ManifestFile> files, IReadOnlyList<(string Path, long Length, uint Crc)>? logPrefixes)
    {
        if (logPrefixes is null) return;
        foreach ((string path, long length, uint crc) in logPrefixes)
            files.Add(new ManifestFile(Path.GetRelativePath(checkpoints, path).Replace('\\', '/'), length, crc, Prefix: true));
    }

    /// <summary>
    /// The versions a checkpoint folder has manifests for, newest first: its increments, then its base. The base's
    /// version is null in a manifest written before versions were recorded.
    /// </summary>
    public static List<(long? Version, string Path)> Manifests(string checkpoints, Guid token)
    {
        var found = new List<(long? Version, string Path)>();
        string folder = LogFolder(checkpoints, token);
        if (!Directory.Exists(folder)) return found;
        foreach (string path in Directory.GetFiles(folder, FileName + ".v*"))
        {
            if (long.TryParse(Path.GetFileName(path).AsSpan(FileName.Length + 2), NumberStyles.None, CultureInfo.InvariantCulture, out long version))
                found.Add((version, path));
        }
        found.Sort((a, b) => b.Version!.Value.CompareTo(a.Version!.Value));
        string basePath = Path.Combine(folder, FileName);
        if (File.Exists(basePath)) found.Add((Read(basePath, token, out _)?.Version, basePath));
        return found;
    }

    /// <summary>
    /// What the manifest of <paramref name="version"/> in <paramref name="token"/>'s folder vouches for: the cut it
    /// holds, the bytes of each delta-log file (by name) that belong to it (a delta file it does not list has none:
    /// a base version), and the hybrid-log prefixes it lists. Null when no readable manifest has that version.
    /// </summary>
    public static (long Cut, Dictionary<string, long> Delta, List<(string Path, long Length, uint Crc)> LogPrefixes)? Vouched(string checkpoints, Guid token, long? version)
    {
        foreach ((long? v, string path) in Manifests(checkpoints, token))
        {
            if (v != version || Read(path, token, out _) is not { } manifest) continue;
            var delta = new Dictionary<string, long>(StringComparer.Ordinal);
            var log = new List<(string, long, uint)>();
            foreach (ManifestFile file in manifest.Files)
            {
                string name = System.IO.Path.GetFileName(file.Path);
                if (name.StartsWith("delta.", StringComparison.Ordinal)) delta[name] = file.Length;
                if (file.Path.StartsWith(LogPrefixPath, StringComparison.Ordinal))
                    log.Add((System.IO.Path.GetFullPath(System.IO.Path.Combine(checkpoints, file.Path)), file.Length, file.Crc32C));
            }
            return (manifest.Cut, delta, log);
        }
        return null;
    }

    /// <summary>The delta-log files of <paramref name="token"/>'s folder (the increments FASTER appended).</summary>
    public static string[] DeltaFiles(string checkpoints, Guid token) =>
        Directory.Exists(LogFolder(checkpoints, token)) ? Directory.GetFiles(LogFolder(checkpoints, token), "delta.*") : [];

    /// <summary>Checks a checkpoint's newest version against its manifest.</summary>
    public static ManifestCheck Check(string checkpoints, Guid token, out string? problem)
    {
        List<(long? Version, string Path)> manifests = Manifests(checkpoints, token);
        if (manifests.Count == 0)
        {
            problem = null;
            return ManifestCheck.Missing;
        }
        return Check(checkpoints, token, manifests[0].Path, out problem);
    }

    /// <summary>Checks a checkpoint's files against one of its manifests.</summary>
    /// <param name="checkpoints">The <c>checkpoints/</c> folder.</param>
    /// <param name="token">The checkpoint.</param>
    /// <param name="manifestPath">The manifest, from <see cref="Manifests"/>.</param>
    /// <param name="problem">For <see cref="ManifestCheck.Damaged"/>: which file and what is wrong with it.</param>
    /// <param name="checkedFiles">Files already found whole in this pass (path, length, CRC), so the base of several
    /// versions is read once; may be null.</param>
    public static ManifestCheck Check(string checkpoints, Guid token, string manifestPath, out string? problem, HashSet<(string, long, uint)>? checkedFiles = null)
    {
        if (!File.Exists(manifestPath))
        {
            problem = null;
            return ManifestCheck.Missing;
        }
        ManifestDocument? manifest = Read(manifestPath, token, out problem);
        if (manifest is null) return ManifestCheck.Damaged;
        foreach (ManifestFile listed in manifest.Files)
        {
            string file = Path.Combine(checkpoints, listed.Path);
            if (!File.Exists(file))
            {
                problem = $"{file} is missing";
                return ManifestCheck.Damaged;
            }
            if (checkedFiles?.Contains((listed.Path, listed.Length, listed.Crc32C)) == true) continue;
            (uint crc, long length) = Crc32C.OfFile(file, listed.Prefix ? listed.Length : long.MaxValue);
            if (length != listed.Length)
            {
                problem = listed.Prefix
                    ? $"{file} has {length} bytes where the checkpoint wrote at least {listed.Length}"
                    : $"{file} has {length} bytes where the checkpoint wrote {listed.Length}";
                return ManifestCheck.Damaged;
            }
            if (crc != listed.Crc32C)
            {
                problem = $"{file} fails its checksum (CRC-32C {crc:x8}, written as {listed.Crc32C:x8})";
                return ManifestCheck.Damaged;
            }
            checkedFiles?.Add((listed.Path, listed.Length, listed.Crc32C));
        }
        return ManifestCheck.Valid;
    }

    /// <summary>A manifest whose own checksum and identity check out; null (with the reason) otherwise.</summary>
    private static ManifestDocument? Read(string path, Guid token, out string? problem)
    {
        problem = null;
        if (!File.Exists(path)) return null;
        byte[] raw = File.ReadAllBytes(path);
        int newline = Array.IndexOf(raw, (byte)'\n');
        ReadOnlySpan<byte> body = newline < 0 ? raw : raw.AsSpan(0, newline);
        ReadOnlySpan<byte> stored = newline < 0 ? default : raw.AsSpan(newline + 1).TrimEnd((byte)'\n');
        if (!uint.TryParse(Encoding.ASCII.GetString(stored), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint expected)
            || expected != ~Crc32C.Append(~0u, body))
        {
            problem = $"its manifest {path} fails its checksum";
            return null;
        }
        ManifestDocument? manifest = JsonSerializer.Deserialize<ManifestDocument>(body, Json);
        if (manifest is null || manifest.Format != Format || manifest.Token != token)
        {
            problem = $"its manifest {path} is not a format-{Format} manifest of checkpoint {token}";
            return null;
        }
        return manifest;
    }

    private static void Save(string final, ManifestDocument document, bool sync)
    {
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(document, Json);
        string trailer = "\n" + (~Crc32C.Append(~0u, body)).ToString("x8", CultureInfo.InvariantCulture) + "\n";
        string temporary = final + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            file.Write(body);
            file.Write(Encoding.ASCII.GetBytes(trailer));
            file.Flush(flushToDisk: sync);
        }
        File.Move(temporary, final, overwrite: true);
        if (sync) FileSync.Directory(Path.GetDirectoryName(final)!);
    }

    /// <summary>A manifest. <paramref name="Version"/> is null in manifests written before it was recorded.</summary>
    private sealed record ManifestDocument(int Format, Guid Token, long Cut, DateTimeOffset CompletedAt, List<ManifestFile> Files, long? Version = null);

    /// <summary>A listed file; with <paramref name="Prefix"/> only its first <paramref name="Length"/> bytes are vouched for.</summary>
    private sealed record ManifestFile(string Path, long Length, uint Crc32C, bool Prefix = false);
}
