using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;

namespace ParamDb.Storage.Durability;

/// <summary>
/// The write-ahead log's on-disk layout. A log is a folder of segment files named <c>wal-{first LSN}.log</c>,
/// each a run of records with consecutive LSNs:
/// <code>
/// u32 payload length | u32 CRC-32C of (length, LSN, payload) | u64 LSN | payload
/// </code>
/// All little-endian. The checksum covers the length too, so a torn or overwritten length is caught like a torn
/// payload. A record that fails its checksum, or that the file ends inside, is where the log ends: a crash can
/// only tear the tail of the newest segment.
/// </summary>
internal static class WalFormat
{
    /// <summary>Bytes before a record's payload.</summary>
    public const int HeaderSize = 16;

    /// <summary>A payload larger than this is corruption, not a record (a push body is at most a few hundred MiB).</summary>
    public const int MaxPayload = 1 << 30;

    private const string Prefix = "wal-", Suffix = ".log";

    /// <summary>The file name of the segment whose first record has <paramref name="firstLsn"/>.</summary>
    public static string SegmentName(long firstLsn) => Prefix + firstLsn.ToString("D20", CultureInfo.InvariantCulture) + Suffix;

    /// <summary>The first LSN a segment file name declares, or false for any other file.</summary>
    public static bool TryParseSegmentName(string fileName, out long firstLsn)
    {
        firstLsn = 0;
        return fileName.StartsWith(Prefix, StringComparison.Ordinal) && fileName.EndsWith(Suffix, StringComparison.Ordinal)
            && long.TryParse(fileName.AsSpan(Prefix.Length, fileName.Length - Prefix.Length - Suffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out firstLsn)
            && firstLsn > 0;
    }

    /// <summary>The segments in <paramref name="directory"/>, oldest first.</summary>
    public static List<(long FirstLsn, string Path)> ListSegments(string directory)
    {
        var segments = new List<(long, string)>();
        if (!Directory.Exists(directory)) return segments;
        foreach (string path in Directory.EnumerateFiles(directory))
        {
            if (TryParseSegmentName(Path.GetFileName(path), out long first)) segments.Add((first, path));
        }
        segments.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return segments;
    }

    /// <summary>
    /// The CRC-32C register of a payload of the three parts in order, started from 0: what the payload adds to a
    /// record's checksum whatever its length and LSN (<see cref="WriteHeader"/>). It needs no LSN, so the log
    /// computes it before taking its lock.
    /// </summary>
    public static uint PayloadRegister(ReadOnlySpan<byte> part1, ReadOnlySpan<byte> part2, ReadOnlySpan<byte> part3) =>
        Crc32C.Append(Crc32C.Append(Crc32C.Append(0, part1), part2), part3);

    /// <summary>
    /// Writes the header of a record of <paramref name="length"/> payload bytes whose <see cref="PayloadRegister"/>
    /// is <paramref name="payloadRegister"/>, so a push's header, keys and values need not be copied together
    /// first, nor checksummed under the log's lock.
    /// </summary>
    public static void WriteHeader(Span<byte> destination, long lsn, uint length, uint payloadRegister)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, length);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], lsn);
        // The register is linear: the fields' part moves on by the payload's length, and the payload's part adds.
        uint crc = Crc32C.Shift(Start(length, lsn), length) ^ payloadRegister;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], ~crc);
    }

    /// <summary>The CRC-32C a record with these fields carries.</summary>
    public static uint Checksum(uint length, long lsn, ReadOnlySpan<byte> payload) => ~Crc32C.Append(Start(length, lsn), payload);

    private static uint Start(uint length, long lsn) => BitOperations.Crc32C(BitOperations.Crc32C(~0u, length), (ulong)lsn);
}
