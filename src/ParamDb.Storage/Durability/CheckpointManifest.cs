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
/// </remarks>
internal static class CheckpointManifest
{
    public const string FileName = "paramdb-manifest.json";
    private const int Format = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static string LogFolder(string checkpoints, Guid token) => Path.Combine(checkpoints, "cpr-checkpoints", token.ToString());

    private static string IndexFolder(string checkpoints, Guid token) => Path.Combine(checkpoints, "index-checkpoints", token.ToString());

    /// <summary>Whether the checkpoint has a manifest (whatever its state).</summary>
    public static bool Exists(string checkpoints, Guid token) => File.Exists(Path.Combine(LogFolder(checkpoints, token), FileName));

    /// <summary>
    /// Checksums the checkpoint's files and writes its manifest. With <paramref name="sync"/> the files and the
    /// manifest are fsynced first (the <see cref="DurabilityMode.Fsync"/> mode), so a manifest never vouches for
    /// bytes still only in the page cache.
    /// </summary>
    public static void Write(string checkpoints, Guid token, long cut, DateTimeOffset completedAt, bool sync)
    {
        var files = new List<ManifestFile>();
        foreach (string folder in new[] { LogFolder(checkpoints, token), IndexFolder(checkpoints, token) })
        {
            if (!Directory.Exists(folder)) throw new IOException($"Checkpoint {token} has no folder {folder}.");
            foreach (string path in Directory.GetFiles(folder))
            {
                string name = Path.GetFileName(path);
                if (name.StartsWith(FileName, StringComparison.Ordinal)) continue;
                if (sync) FileSync.File(path);
                (uint crc, long length) = Crc32C.OfFile(path);
                files.Add(new ManifestFile(Path.GetRelativePath(checkpoints, path).Replace('\\', '/'), length, crc));
            }
        }
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(new ManifestDocument(Format, token, cut, completedAt, files), Json);
        string trailer = "\n" + (~Crc32C.Append(~0u, body)).ToString("x8", CultureInfo.InvariantCulture) + "\n";
        string final = Path.Combine(LogFolder(checkpoints, token), FileName);
        string temporary = final + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            file.Write(body);
            file.Write(Encoding.ASCII.GetBytes(trailer));
            file.Flush(flushToDisk: sync);
        }
        File.Move(temporary, final, overwrite: true);
    }

    /// <summary>Checks a checkpoint's files against its manifest.</summary>
    /// <param name="checkpoints">The <c>checkpoints/</c> folder.</param>
    /// <param name="token">The checkpoint.</param>
    /// <param name="problem">For <see cref="ManifestCheck.Damaged"/>: which file and what is wrong with it.</param>
    public static ManifestCheck Check(string checkpoints, Guid token, out string? problem)
    {
        problem = null;
        string path = Path.Combine(LogFolder(checkpoints, token), FileName);
        if (!File.Exists(path)) return ManifestCheck.Missing;
        byte[] raw = File.ReadAllBytes(path);
        int newline = Array.IndexOf(raw, (byte)'\n');
        ReadOnlySpan<byte> body = newline < 0 ? raw : raw.AsSpan(0, newline);
        ReadOnlySpan<byte> stored = newline < 0 ? default : raw.AsSpan(newline + 1).TrimEnd((byte)'\n');
        if (!uint.TryParse(Encoding.ASCII.GetString(stored), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint expected)
            || expected != ~Crc32C.Append(~0u, body))
        {
            problem = $"its manifest {path} fails its checksum";
            return ManifestCheck.Damaged;
        }
        ManifestDocument? manifest = JsonSerializer.Deserialize<ManifestDocument>(body, Json);
        if (manifest is null || manifest.Format != Format || manifest.Token != token)
        {
            problem = $"its manifest {path} is not a format-{Format} manifest of checkpoint {token}";
            return ManifestCheck.Damaged;
        }
        foreach (ManifestFile listed in manifest.Files)
        {
            string file = Path.Combine(checkpoints, listed.Path);
            if (!File.Exists(file))
            {
                problem = $"{file} is missing";
                return ManifestCheck.Damaged;
            }
            (uint crc, long length) = Crc32C.OfFile(file);
            if (length != listed.Length)
            {
                problem = $"{file} has {length} bytes where the checkpoint wrote {listed.Length}";
                return ManifestCheck.Damaged;
            }
            if (crc != listed.Crc32C)
            {
                problem = $"{file} fails its checksum (CRC-32C {crc:x8}, written as {listed.Crc32C:x8})";
                return ManifestCheck.Damaged;
            }
        }
        return ManifestCheck.Valid;
    }

    private sealed record ManifestDocument(int Format, Guid Token, long Cut, DateTimeOffset CompletedAt, List<ManifestFile> Files);

    private sealed record ManifestFile(string Path, long Length, uint Crc32C);
}
