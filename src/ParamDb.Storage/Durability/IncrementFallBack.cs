using System.Globalization;

namespace ParamDb.Storage.Durability;

/// <summary>
/// Makes FASTER see exactly the version of a checkpoint folder that recovery chose, when that is not the folder's
/// newest: its base after a damaged increment, or an increment before a damaged or unfinished later one.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> Increments append to one delta log in their base's folder. FASTER 2.6.5, asked to recover an
/// earlier version (<c>recoverTo</c>), still reads the delta log past it: with 16 bytes inverted in the middle of
/// an increment it applied damaged records while recovering the base (a row read <c>[107,46,37,2]</c> where
/// <c>[445,190,149,32]</c> was acknowledged, or the process died of an access violation), and the cut record it
/// recovered was the damaged version's, so the write-ahead log replayed from the wrong place.</para>
/// <para><b>How.</b> The manifest of every version lists the prefix of each delta file that belongs to it (none
/// for the base). A longer file is moved to <c>DATA/damaged/</c> and its vouched prefix copied back, so FASTER can
/// read only what the chosen version holds. Once recovered, the cut record must be the manifest's cut (checked
/// by the caller), or the candidate is refused like a damaged one.</para>
/// </remarks>
internal static class IncrementFallBack
{
    /// <summary>
    /// Cuts the delta log of <paramref name="token"/>'s folder down to what <paramref name="version"/> vouches for,
    /// moving the longer files aside. Returns the manifest's cut and the hybrid-log prefixes it vouches for (checked
    /// already, so the next checkpoint need not read them again), or null without a manifest of that version (a
    /// store written before manifests: nothing to cut, nothing to check).
    /// </summary>
    /// <exception cref="InvalidDataException">The delta log must be cut but the store is opened read-only.</exception>
    public static (long Cut, List<(string Path, long Length, uint Crc)> LogPrefixes)? Confine(string checkpoints, Guid token, long? version, string dataDirectory, bool readOnly)
    {
        if (CheckpointManifest.Vouched(checkpoints, token, version) is not { } vouched) return null;
        foreach (string file in CheckpointManifest.DeltaFiles(checkpoints, token))
        {
            long keep = vouched.Delta.GetValueOrDefault(Path.GetFileName(file));
            long length = new FileInfo(file).Length;
            if (length <= keep) continue;
            if (readOnly)
                throw new InvalidDataException($"{file} holds {length} bytes where version {version} of checkpoint {token} has {keep}, and the store is opened read-only.");
            string aside = Path.Combine(dataDirectory, WalSalvage.DamagedFolder,
                $"checkpoint-{token}-{DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}");
            Directory.CreateDirectory(aside);
            string moved = Path.Combine(aside, Path.GetFileName(file));
            File.Move(file, moved, overwrite: true);
            if (keep > 0)
            {
                using var source = new FileStream(moved, FileMode.Open, FileAccess.Read);
                using var prefix = new FileStream(file, FileMode.CreateNew, FileAccess.Write);
                CopyPrefix(source, prefix, keep);
                prefix.Flush(flushToDisk: true);
            }
            FileSync.Directory(Path.GetDirectoryName(file)!);
        }
        return (vouched.Cut, vouched.LogPrefixes);
    }

    private static void CopyPrefix(Stream source, Stream destination, long bytes)
    {
        byte[] buffer = new byte[1 << 20];
        while (bytes > 0)
        {
            int n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, bytes));
            if (n == 0) throw new EndOfStreamException("The delta log ended before the prefix its manifest vouches for.");
            destination.Write(buffer, 0, n);
            bytes -= n;
        }
    }
}
