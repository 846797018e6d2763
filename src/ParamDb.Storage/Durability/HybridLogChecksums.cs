using System.Globalization;

namespace ParamDb.Storage.Durability;

/// <summary>
/// The CRC-32C of what FASTER has flushed of each hybrid-log segment (<c>DATA/log/hlog.log.N</c>), kept up to date
/// from one checkpoint to the next, so every manifest can vouch for the on-disk part of the log its checkpoint
/// stands on.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> A snapshot checkpoint holds only the log above what FASTER had flushed; the rows of a table
/// larger than memory live below, in these segments, which every checkpoint shares and FASTER never checks. A
/// flipped byte there was served as a parameter value, or crashed the process on a damaged record header.</para>
/// <para><b>Why it can be kept incrementally.</b> FASTER writes a page of the log once, when it leaves memory, and
/// never rewrites what lies below its flushed address: an update copies the record to the tail. So each segment's
/// checksum up to the flushed address only grows, and a checkpoint reads just what was flushed since the last one
/// (<see cref="Crc32C.Combine"/> extends the sum). An open checks the whole of it, once, with the manifest: a
/// restart reads the on-disk log (about 0.8 s per GB with direct reads on the development VM).</para>
/// <para>Used under the store's maintenance lock: one caller at a time.</para>
/// </remarks>
internal sealed class HybridLogChecksums(string logDirectory, int segmentSizeBits)
{
    private readonly Dictionary<long, (long Length, uint Crc)> _segments = [];

    /// <summary>The first address FASTER writes a record at; below it the log's first segment holds nothing.</summary>
    private const long FirstAddress = 64;

    /// <summary>
    /// Starts from prefixes a manifest vouched for and the open just checked, so the first checkpoint after a start
    /// reads only what FASTER flushed since, not the whole on-disk log again.
    /// </summary>
    public void Seed(IEnumerable<(string Path, long Length, uint Crc)> prefixes)
    {
        foreach ((string path, long length, uint crc) in prefixes)
        {
            string name = Path.GetFileName(path);
            if (name.StartsWith("hlog.log.", StringComparison.Ordinal)
                && long.TryParse(name.AsSpan("hlog.log.".Length), NumberStyles.None, CultureInfo.InvariantCulture, out long segment))
                _segments[segment] = (length, crc);
        }
    }

    /// <summary>The file FASTER keeps segment <paramref name="segment"/> in.</summary>
    public string SegmentPath(long segment) => Path.Combine(logDirectory, "hlog.log." + segment.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// The flushed prefix of every segment from <paramref name="beginAddress"/> to <paramref name="flushedUntil"/>:
    /// each file, the bytes that are FASTER's flushed log, and their CRC-32C. Reads only what was flushed since the
    /// previous call.
    /// </summary>
    public List<(string Path, long Length, uint Crc)> Through(long beginAddress, long flushedUntil)
    {
        var prefixes = new List<(string, long, uint)>();
        long first = beginAddress >> segmentSizeBits, segmentBytes = 1L << segmentSizeBits;
        foreach (long stale in _segments.Keys.Where(s => s < first).ToList()) _segments.Remove(stale);
        for (long segment = first; segment << segmentSizeBits < flushedUntil; segment++)
        {
            long want = Math.Min(segmentBytes, flushedUntil - (segment << segmentSizeBits));
            // FASTER's log starts at address 64 and reports those first bytes flushed before it writes any.
            if (segment == 0 && want <= FirstAddress) continue;
            string path = SegmentPath(segment);
            (long length, uint crc) = _segments.GetValueOrDefault(segment);
            if (length > want) (length, crc) = (0, 0);
            if (length < want)
            {
                crc = Crc32C.Combine(crc, OfRange(path, length, want), want - length);
                length = want;
                _segments[segment] = (length, crc);
            }
            prefixes.Add((path, length, crc));
        }
        return prefixes;
    }

    /// <summary>CRC-32C of bytes [<paramref name="from"/>, <paramref name="to"/>) of a file; a shorter file is an error.</summary>
    private static uint OfRange(string path, long from, long to)
    {
        using var handle = File.OpenHandle(path);
        byte[] buffer = new byte[1 << 20];
        uint crc = ~0u;
        for (long at = from; at < to;)
        {
            int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, to - at)), at);
            if (n == 0) throw new IOException($"{path} ends at byte {at}, below the {to} bytes FASTER reports flushed.");
            crc = Crc32C.Append(crc, buffer.AsSpan(0, n));
            at += n;
        }
        return ~crc;
    }
}
