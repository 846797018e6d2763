using System.Buffers;
using System.Buffers.Binary;

namespace ParamDb.Storage.Durability;

/// <summary>Receives one record of a replay; the payload is only valid during the call.</summary>
internal delegate void WalVisitor(long lsn, ReadOnlySpan<byte> payload);

/// <summary>What a scan of the log found.</summary>
/// <param name="LastLsn">The newest valid record's LSN (0 when there is none).</param>
/// <param name="Visited">Records handed to the visitor.</param>
/// <param name="TornSegment">The newest segment when it ends in a torn record, else null.</param>
/// <param name="TornAt">Where that segment's valid records end.</param>
internal readonly record struct WalScan(long LastLsn, long Visited, string? TornSegment, long TornAt)
{
    /// <summary>Segments read.</summary>
    public int Segments { get; init; }

    /// <summary>Bytes read from the segment files (read ahead of the parsing, so up to a few chunks past where it stopped).</summary>
    public long BytesRead { get; init; }

    /// <summary>Time the parsing thread waited for reads: what the read-ahead could not hide.</summary>
    public TimeSpan ReadWait { get; init; }
}

/// <summary>
/// The log is damaged where a replay needs it, and not only at its tail: records that were acknowledged cannot be
/// read back. <see cref="Damage"/> says where, when the framing itself is damaged (null for a record whose
/// contents do not fit the store).
/// </summary>
internal sealed class WalCorruptException : IOException
{
    public WalCorruptException(string message) : base(message) { }

    public WalCorruptException(WalDamage damage) : base(damage.Describe() + ".") => Damage = damage;

    /// <summary>Where the log is damaged and what lies intact after it.</summary>
    public WalDamage? Damage { get; }
}

/// <summary>
/// Reads the write-ahead log back, checking every record (see <see cref="WalFormat"/>). The files are read on a
/// thread of their own, a few chunks ahead of the parsing (<see cref="WalReadAhead"/>), so a replay's disk reads
/// overlap with applying the records.
/// </summary>
internal static class WalReader
{
    /// <summary>
    /// Reads the segments in order, from the one holding <paramref name="fromLsn"/>, and hands each valid record
    /// with an LSN of at least <paramref name="fromLsn"/> to <paramref name="visit"/>. The newest segment may end
    /// in a torn record (a crash during a write): the scan stops there and says where. Damage anywhere else in
    /// what is read is an error; segments wholly before <paramref name="fromLsn"/> are not read.
    /// </summary>
    /// <exception cref="WalCorruptException">A record before the newest segment's tail fails its checks, or LSNs skip.</exception>
    public static WalScan Replay(string directory, long fromLsn, WalVisitor visit) => Scan(directory, fromLsn, visit);

    /// <summary><see cref="Replay"/>, or with no visitor only the newest segment's end (for <see cref="WriteAheadLog"/>'s open).</summary>
    /// <param name="directory">The log's folder.</param>
    /// <param name="fromLsn">The first LSN handed to <paramref name="visit"/>; earlier records of its segment are only checked.</param>
    /// <param name="visit">Receives the records; null (with <paramref name="fromLsn"/> = <see cref="long.MaxValue"/>) reads only the newest segment, to find where the log ends.</param>
    /// <param name="chunkBytes">Bytes per read-ahead chunk (<see cref="WalReadAhead"/>); tests make it small so records cross chunks.</param>
    internal static WalScan Scan(string directory, long fromLsn, WalVisitor? visit, int chunkBytes = WalReadAhead.DefaultChunkBytes)
    {
        List<(long FirstLsn, string Path)> segments = WalFormat.ListSegments(directory);
        long last = 0, visited = 0;
        // Segments wholly before fromLsn are not read: the next one's name says where they end. They are kept only
        // for a fall back to an older checkpoint, whose earlier cut makes that replay read and check them. After
        // a kill -9 with two checkpoints kept they were half the log or more (~1.5 GB of ~2.6–3.2 GB read).
        // Without a visitor (fromLsn = long.MaxValue) only the newest segment is read: where the log ends.
        int start = 0;
        while (start + 1 < segments.Count && segments[start + 1].FirstLsn <= fromLsn) start++;
        if (start > 0) last = segments[start].FirstLsn - 1;
        var paths = new List<string>(segments.Count - start);
        for (int s = start; s < segments.Count; s++) paths.Add(segments[s].Path);
        // Payloads that cross a chunk's end are copied here; most are handed out inside the chunk.
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        byte[] headerScratch = ArrayPool<byte>.Shared.Rent(WalFormat.HeaderSize);
        var reads = new WalReadAhead(paths, chunkBytes);
        try
        {
            long expected = segments.Count > start ? segments[start].FirstLsn : 1;
            for (int s = start; s < segments.Count; s++)
            {
                (long first, string path) = segments[s];
                bool newest = s == segments.Count - 1;
                if (s > start && first != expected)
                {
                    // Records expected…first-1 are in no segment. Harmless only when the replay needs none of them.
                    if (first < expected || first - 1 >= fromLsn)
                        throw Corrupt(segments, s, 0, expected, $"the log skips from record {expected - 1} to {first}: a segment is missing");
                }
                expected = first;
                reads.NextSegment();
                long fileLength = new FileInfo(path).Length;
                long offset = 0;     // where the record being read starts
                long position = 0;   // bytes taken from this segment so far
                while (true)
                {
                    ReadOnlySpan<byte> header = reads.Take(WalFormat.HeaderSize, ref headerScratch);
                    int got = header.Length;
                    position += got;
                    if (got == 0) break; // the segment ends at a record boundary
                    string? tear = null;
                    uint length = 0, crc = 0;
                    long lsn = 0;
                    if (got < WalFormat.HeaderSize) tear = $"the file ends {got} bytes into a record header";
                    else
                    {
                        length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                        crc = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
                        lsn = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
                        // Checked before reading the payload, so a damaged length never sizes a buffer.
                        if (length > WalFormat.MaxPayload || offset + WalFormat.HeaderSize + length > fileLength)
                            tear = $"a record claims {length} bytes, past the file's end at byte {fileLength}";
                    }
                    ReadOnlySpan<byte> payload = default;
                    if (tear is null)
                    {
                        payload = reads.Take((int)length, ref buffer);
                        int read = payload.Length;
                        position += read;
                        if (read < length) tear = $"the file ends {read} bytes into a {length}-byte record";
                        else if (WalFormat.Checksum(length, lsn, payload) != crc) tear = "a record fails its checksum";
                        else if (lsn != expected) tear = $"record {lsn} where {expected} was due";
                    }
                    if (tear is not null)
                    {
                        // A torn tail, or damage with intact records after it (see WalSalvage)?
                        (long intact, long resumeAt, long resumeLsn, long lastIntact) = WalSalvage.SurveyToEnd(segments, s, offset + 1, expected);
                        if (intact == 0 && newest) return Done(new WalScan(last, visited, path, offset), reads, s - start + 1);
                        var damage = new WalDamage(path, offset, expected, tear, intact, resumeLsn, lastIntact);
                        if (resumeAt >= 0 && resumeAt < position)
                            // The bad record's length ran over intact records, and the read-ahead cannot go back: go on
                            // from the first intact record after where it stands (those before it count as lost).
                            (_, resumeAt, resumeLsn, _) = WalSalvage.SurveyToEnd(segments, s, position, expected);
                        // Records lost to the damage are expected…resumeLsn-1: harmless when the replay starts after them.
                        if (resumeLsn == 0 || resumeLsn > fromLsn) throw new WalCorruptException(damage);
                        if (resumeAt < 0) break;   // the next intact record starts a later segment
                        Skip(reads, resumeAt - position, ref buffer);
                        position = offset = resumeAt;
                        expected = resumeLsn;
                        continue;
                    }
                    if (lsn >= fromLsn && visit is not null)
                    {
                        visit(lsn, payload);
                        visited++;
                    }
                    last = lsn;
                    expected = lsn + 1;
                    offset += WalFormat.HeaderSize + length;
                }
                if (offset == 0 && newest) return Done(new WalScan(last, visited, path, 0), reads, s - start + 1); // created, never written
            }
            return Done(new WalScan(last, visited, null, 0), reads, segments.Count - start);
        }
        finally
        {
            reads.Dispose();
            ArrayPool<byte>.Shared.Return(headerScratch);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Damage at <paramref name="offset"/> of segment <paramref name="index"/>, with what lies intact after it.</summary>
    private static WalCorruptException Corrupt(List<(long FirstLsn, string Path)> segments, int index, long offset, long lsn, string problem)
    {
        (long intact, _, long firstLsn, long lastLsn) = WalSalvage.SurveyToEnd(segments, index, offset, lsn);
        return new WalCorruptException(new WalDamage(segments[index].Path, offset, lsn, problem, intact, firstLsn, lastLsn));
    }

    /// <summary>Moves the read-ahead <paramref name="bytes"/> forward in the current segment.</summary>
    private static void Skip(WalReadAhead reads, long bytes, ref byte[] scratch)
    {
        while (bytes > 0)
        {
            int n = reads.Take((int)Math.Min(bytes, 1 << 20), ref scratch).Length;
            if (n == 0) return;
            bytes -= n;
        }
    }

    /// <summary>The scan's result with what the read-ahead measured.</summary>
    private static WalScan Done(WalScan scan, WalReadAhead reads, int segments) =>
        scan with { Segments = segments, BytesRead = reads.BytesRead, ReadWait = reads.WaitTime };
}
