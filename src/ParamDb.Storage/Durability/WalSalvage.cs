using System.Buffers.Binary;
using System.Globalization;

namespace ParamDb.Storage.Durability;

/// <summary>
/// Damage in the write-ahead log that is not a torn tail: a record that fails its checks with intact records
/// after it, or a missing segment. Those later records were written, so they were acknowledged (in <c>wal</c>
/// mode once written, in <c>fsync</c> mode once synced, which a power loss can undo), and a start that ended the
/// log at the damage would drop them silently.
/// </summary>
/// <param name="Segment">The segment holding the damage (for a missing segment, the one after the gap).</param>
/// <param name="Offset">Where in <paramref name="Segment"/> the first bad record starts.</param>
/// <param name="Lsn">The first record that cannot be read back.</param>
/// <param name="Problem">What is wrong there, for a person.</param>
/// <param name="IntactAfter">Records after the damage that pass their checks.</param>
/// <param name="FirstLsnAfter">The first of them (0 when there are none).</param>
/// <param name="LastLsnAfter">The last of them (0 when there are none).</param>
internal sealed record WalDamage(string Segment, long Offset, long Lsn, string Problem, long IntactAfter, long FirstLsnAfter, long LastLsnAfter)
{
    /// <summary>One line naming the damage and what lies beyond it.</summary>
    public string Describe() => IntactAfter == 0
            ? string.Create(CultureInfo.InvariantCulture, $"The write-ahead log is damaged in {Segment} at byte {Offset}: {Problem} (record {Lsn}), and nothing intact follows it in a later segment")
            : string.Create(CultureInfo.InvariantCulture, $"The write-ahead log is damaged in {Segment} at byte {Offset}: {Problem} (record {Lsn}), and {IntactAfter} intact records were written after it (records {FirstLsnAfter}…{LastLsnAfter})");
}

/// <summary>
/// Tells a torn tail from corruption, and sets damaged log aside when an operator accepts the loss
/// (<c>paramdb recover --accept-loss</c>).
/// </summary>
/// <remarks>
/// A crash tears at most the record being written when it came: nothing valid can follow it. So after a record
/// that fails its checks, the rest of the segment is searched byte by byte for a record that passes them (its LSN
/// at least the lost one's, its length inside the file, its CRC-32C right): finding one means the damage came
/// later, to bytes that had been written whole. The search reads the rest of one segment (64 MiB by default) and
/// computes a checksum only where an LSN is plausible, so it costs well under a second, and only on damage.
/// </remarks>
internal static class WalSalvage
{
    /// <summary>The folder, under the data directory, that damaged files are moved into.</summary>
    public const string DamagedFolder = "damaged";

    /// <summary>
    /// The intact records of <paramref name="path"/> from byte <paramref name="from"/> on whose LSN is at least
    /// <paramref name="minLsn"/>: how many, the first's offset and LSN, and the last's LSN.
    /// </summary>
    public static (long Count, long FirstOffset, long FirstLsn, long LastLsn) Survey(string path, long from, long minLsn)
    {
        long count = 0, firstOffset = -1, firstLsn = 0, lastLsn = 0;
        using var handle = File.OpenHandle(path);
        long fileLength = RandomAccess.GetLength(handle);
        if (from >= fileLength) return (0, -1, 0, 0);
        // The rest of one segment: at most its size (64 MiB by default), once, on damage only.
        byte[] rest = new byte[fileLength - from];
        int read = 0;
        while (read < rest.Length)
        {
            int n = RandomAccess.Read(handle, rest.AsSpan(read), from + read);
            if (n == 0) break;
            read += n;
        }
        ReadOnlySpan<byte> bytes = rest.AsSpan(0, read);
        long p = 0;
        while (p + WalFormat.HeaderSize <= bytes.Length)
        {
            ReadOnlySpan<byte> header = bytes[(int)p..];
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
            long lsn = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
            long end = p + WalFormat.HeaderSize + length;
            // Each record takes at least a header, which bounds how far ahead a plausible LSN can be.
            bool plausible = lsn >= minLsn && lsn - minLsn <= (bytes.Length - p) / WalFormat.HeaderSize && end <= bytes.Length;
            if (plausible && WalFormat.Checksum(length, lsn, bytes.Slice((int)p + WalFormat.HeaderSize, (int)length)) == BinaryPrimitives.ReadUInt32LittleEndian(header[4..]))
            {
                if (count++ == 0) (firstOffset, firstLsn) = (from + p, lsn);
                lastLsn = lsn;
                minLsn = lsn + 1;
                p = end;
                continue;
            }
            p++;
        }
        return (count, firstOffset, firstLsn, lastLsn);
    }

    /// <summary>
    /// Counts the intact records from byte <paramref name="from"/> of <paramref name="segments"/>[<paramref name="index"/>]
    /// to the end of the log, for a <see cref="WalDamage"/>; also returns where the first of them is in that segment
    /// (-1 when the segment has none).
    /// </summary>
    public static (long Count, long FirstOffset, long FirstLsn, long LastLsn) SurveyToEnd(IReadOnlyList<(long FirstLsn, string Path)> segments, int index, long from, long minLsn)
    {
        (long count, long firstOffset, long firstLsn, long lastLsn) = Survey(segments[index].Path, from, minLsn);
        for (int s = index + 1; s < segments.Count; s++)
        {
            (long c, _, long f, long l) = Survey(segments[s].Path, 0, Math.Max(minLsn, segments[s].FirstLsn));
            if (c == 0) continue;
            if (count == 0) firstLsn = f;
            count += c;
            lastLsn = l;
        }
        return (count, firstOffset, firstLsn, lastLsn);
    }

    /// <summary>
    /// Ends the log where <paramref name="damage"/> starts: the damaged segment's bytes from there on, and every
    /// later segment, move to <c>DATA/damaged/wal-{time}/</c> (kept for whoever wants to look), and the segment is
    /// cut at the damage. Returns the folder they went to.
    /// </summary>
    public static string SetAside(string walDirectory, WalDamage damage, string dataDirectory)
    {
        string aside = Path.Combine(dataDirectory, DamagedFolder, "wal-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(aside);
        List<(long FirstLsn, string Path)> segments = WalFormat.ListSegments(walDirectory);
        foreach ((_, string path) in segments)
        {
            int order = string.CompareOrdinal(Path.GetFileName(path), Path.GetFileName(damage.Segment));
            if (order < 0) continue;
            if (order > 0 || damage.Offset == 0)
            {
                File.Move(path, Path.Combine(aside, Path.GetFileName(path)));
                continue;
            }
            // The damaged segment: its bytes from the damage on are copied aside, then cut off.
            string tail = Path.Combine(aside, Path.GetFileName(path) + ".from-" + damage.Offset.ToString(CultureInfo.InvariantCulture));
            using (var source = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                using (var copy = new FileStream(tail, FileMode.CreateNew, FileAccess.Write))
                {
                    source.Position = damage.Offset;
                    source.CopyTo(copy);
                    copy.Flush(flushToDisk: true);
                }
                source.SetLength(damage.Offset);
                source.Flush(flushToDisk: true);
            }
        }
        FileSync.Directory(aside);
        FileSync.Directory(walDirectory);
        return aside;
    }
}
