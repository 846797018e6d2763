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

/// <summary>A segment other than the newest is damaged: records that were acknowledged cannot be read back.</summary>
internal sealed class WalCorruptException(string message) : IOException(message);

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
            for (int s = start; s < segments.Count; s++)
            {
                (long first, string path) = segments[s];
                bool newest = s == segments.Count - 1;
                if (s > start && first != last + 1)
                    throw new WalCorruptException($"The write-ahead log skips from record {last} to {first} at {path}: a segment is missing.");
                long expected = first;
                reads.NextSegment();
                long offset = 0;
                while (true)
                {
                    ReadOnlySpan<byte> header = reads.Take(WalFormat.HeaderSize, ref headerScratch);
                    int got = header.Length;
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
                        if (length > WalFormat.MaxPayload) tear = $"a record claims {length} bytes";
                    }
                    ReadOnlySpan<byte> payload = default;
                    if (tear is null)
                    {
                        payload = reads.Take((int)length, ref buffer);
                        int read = payload.Length;
                        if (read < length) tear = $"the file ends {read} bytes into a {length}-byte record";
                        else if (WalFormat.Checksum(length, lsn, payload) != crc) tear = "a record fails its checksum";
                        else if (lsn != expected) tear = $"record {lsn} where {expected} was due";
                    }
                    if (tear is not null)
                    {
                        if (!newest) throw new WalCorruptException($"The write-ahead log is damaged in {path} at byte {offset}: {tear}.");
                        return Done(new WalScan(last, visited, path, offset), reads, s - start + 1);
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

    /// <summary>The scan's result with what the read-ahead measured.</summary>
    private static WalScan Done(WalScan scan, WalReadAhead reads, int segments) =>
        scan with { Segments = segments, BytesRead = reads.BytesRead, ReadWait = reads.WaitTime };
}
