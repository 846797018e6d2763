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
internal readonly record struct WalScan(long LastLsn, long Visited, string? TornSegment, long TornAt);

/// <summary>A segment other than the newest is damaged: records that were acknowledged cannot be read back.</summary>
internal sealed class WalCorruptException(string message) : IOException(message);

/// <summary>Reads the write-ahead log back, checking every record (see <see cref="WalFormat"/>).</summary>
internal static class WalReader
{
    /// <summary>
    /// Reads every segment in order and hands each valid record with an LSN of at least
    /// <paramref name="fromLsn"/> to <paramref name="visit"/>. The newest segment may end in a torn record (a
    /// crash during a write): the scan stops there and says where. Damage anywhere else is an error.
    /// </summary>
    /// <exception cref="WalCorruptException">A record before the newest segment's tail fails its checks, or LSNs skip.</exception>
    public static WalScan Replay(string directory, long fromLsn, WalVisitor visit) => Scan(directory, fromLsn, visit);

    internal static WalScan Scan(string directory, long fromLsn, WalVisitor? visit)
    {
        List<(long FirstLsn, string Path)> segments = WalFormat.ListSegments(directory);
        long last = 0, visited = 0;
        // Without a visitor only the newest segment matters: where the log ends.
        int start = visit is null ? Math.Max(0, segments.Count - 1) : 0;
        if (start > 0) last = segments[start].FirstLsn - 1;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        Span<byte> header = stackalloc byte[WalFormat.HeaderSize];
        try
        {
            for (int s = start; s < segments.Count; s++)
            {
                (long first, string path) = segments[s];
                bool newest = s == segments.Count - 1;
                if (s > start && first != last + 1)
                    throw new WalCorruptException($"The write-ahead log skips from record {last} to {first} at {path}: a segment is missing.");
                long expected = first;
                using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1 << 16);
                long offset = 0;
                while (true)
                {
                    int got = file.ReadAtLeast(header, WalFormat.HeaderSize, throwOnEndOfStream: false);
                    if (got == 0) break; // the segment ends at a record boundary
                    string? tear = null;
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                    uint crc = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
                    long lsn = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
                    if (got < WalFormat.HeaderSize) tear = $"the file ends {got} bytes into a record header";
                    else if (length > WalFormat.MaxPayload) tear = $"a record claims {length} bytes";
                    if (tear is null)
                    {
                        if (buffer.Length < length)
                        {
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = ArrayPool<byte>.Shared.Rent((int)length);
                        }
                        int read = file.ReadAtLeast(buffer.AsSpan(0, (int)length), (int)length, throwOnEndOfStream: false);
                        if (read < length) tear = $"the file ends {read} bytes into a {length}-byte record";
                        else if (WalFormat.Checksum(length, lsn, buffer.AsSpan(0, (int)length)) != crc) tear = "a record fails its checksum";
                        else if (lsn != expected) tear = $"record {lsn} where {expected} was due";
                    }
                    if (tear is not null)
                    {
                        if (!newest) throw new WalCorruptException($"The write-ahead log is damaged in {path} at byte {offset}: {tear}.");
                        return new WalScan(last, visited, path, offset);
                    }
                    if (lsn >= fromLsn && visit is not null)
                    {
                        visit(lsn, buffer.AsSpan(0, (int)length));
                        visited++;
                    }
                    last = lsn;
                    expected = lsn + 1;
                    offset += WalFormat.HeaderSize + length;
                }
                if (offset == 0 && newest) return new WalScan(last, visited, path, 0); // created, never written
            }
            return new WalScan(last, visited, null, 0);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
