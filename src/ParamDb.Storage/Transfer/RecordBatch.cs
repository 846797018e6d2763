using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ParamDb.Storage.Transfer;

/// <summary>
/// One batch of whole records of one range of one table, as <see cref="RangeCopy"/> reads them and
/// <see cref="ParamStore.ApplyRecords"/> writes them: each row's payload exactly as stored (values, then optimizer
/// state: <c>RowLayout</c>), and, in the last batch of a copy, the range's vector clock. Replication, catch-up and
/// migration ship these bytes between nodes unchanged, and the write-ahead log holds them verbatim.
/// <code>
/// offset      size        field (little-endian)
/// 0           4           u32 format = 1
/// 4           4           u32 table id (cluster-wide)
/// 8           8           u64 range: the ring token the range ends at
/// 16          4           u32 payload bytes P per record (the table's layout: dim, updater)
/// 20          4           u32 records N
/// 24          4           u32 clock entries C
/// 28          4           reserved, 0
/// 32          8·N         keys
/// 32+8N       P·N         payloads, in key order of the list above
/// …           16·C        (u32 worker, u32 reserved 0, u64 clock), workers ascending
/// </code>
/// </summary>
public readonly ref struct RecordBatch
{
    /// <summary>Bytes before the keys.</summary>
    public const int HeaderSize = 32;

    /// <summary>Bytes of one clock entry.</summary>
    public const int ClockEntrySize = 16;

    private const uint Format = 1;

    private RecordBatch(ReadOnlySpan<byte> bytes, uint table, ulong token, int payloadBytes, int count, int clocks)
    {
        Bytes = bytes;
        TableId = table;
        Token = token;
        PayloadBytes = payloadBytes;
        Count = count;
        ClockCount = clocks;
    }

    /// <summary>The whole batch.</summary>
    public ReadOnlySpan<byte> Bytes { get; }

    /// <summary>The table's cluster-wide id.</summary>
    public uint TableId { get; }

    /// <summary>The range: the ring token it ends at.</summary>
    public ulong Token { get; }

    /// <summary>Bytes of each record's payload.</summary>
    public int PayloadBytes { get; }

    /// <summary>Records in the batch.</summary>
    public int Count { get; }

    /// <summary>Clock entries: the range's vector clock, in the last batch of a copy only.</summary>
    public int ClockCount { get; }

    /// <summary>The keys, one per record.</summary>
    public ReadOnlySpan<ulong> Keys => MemoryMarshal.Cast<byte, ulong>(Bytes.Slice(HeaderSize, 8 * Count));

    /// <summary>The payloads, <see cref="PayloadBytes"/> each.</summary>
    public ReadOnlySpan<byte> Payloads => Bytes.Slice(HeaderSize + 8 * Count, PayloadBytes * Count);

    /// <summary>Clock entry <paramref name="i"/>: a worker and its clock on the range.</summary>
    public (uint Worker, ulong Clock) ClockAt(int i)
    {
        ReadOnlySpan<byte> entry = Bytes.Slice(HeaderSize + (8 + PayloadBytes) * Count + ClockEntrySize * i, ClockEntrySize);
        return (BinaryPrimitives.ReadUInt32LittleEndian(entry), BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]));
    }

    /// <summary>
    /// A batch already checked by <see cref="TrySplit"/> or <see cref="TryParse"/>: its header read again, without
    /// checking its keys a second time (that is a pass over every key).
    /// </summary>
    internal static RecordBatch Of(ReadOnlySpan<byte> bytes) =>
        new(bytes, BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]), BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]),
            (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes[16..]), (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes[20..]),
            (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes[24..]));

    /// <summary>The ring token of a batch <see cref="TrySplit"/> has checked: the range it belongs to.</summary>
    public static ulong TokenOf(ReadOnlySpan<byte> checkedBatch) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(checkedBatch[8..]);

    /// <summary>Bytes of a batch of <paramref name="count"/> records of <paramref name="payloadBytes"/> and <paramref name="clocks"/> clock entries.</summary>
    public static long SizeOf(int payloadBytes, int count, int clocks) => HeaderSize + (8L + payloadBytes) * count + (long)ClockEntrySize * clocks;

    /// <summary>
    /// Lays out a batch of <paramref name="count"/> records in <paramref name="batch"/> (exactly
    /// <see cref="SizeOf"/> bytes): writes its header and its clock entries, and returns where the caller writes the
    /// keys (8 bytes each, little-endian, ascending) and the payloads (<paramref name="payloadBytes"/> each, in key order).
    /// </summary>
    internal static void Lay(Span<byte> batch, uint table, ulong token, int payloadBytes, int count,
        ReadOnlySpan<(uint Worker, ulong Clock)> clocks, out Span<byte> keys, out Span<byte> payloads)
    {
        batch[..HeaderSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(batch, Format);
        BinaryPrimitives.WriteUInt32LittleEndian(batch[4..], table);
        BinaryPrimitives.WriteUInt64LittleEndian(batch[8..], token);
        BinaryPrimitives.WriteUInt32LittleEndian(batch[16..], (uint)payloadBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(batch[20..], (uint)count);
        BinaryPrimitives.WriteUInt32LittleEndian(batch[24..], (uint)clocks.Length);
        int clocksAt = HeaderSize + (8 + payloadBytes) * count;
        for (int i = 0; i < clocks.Length; i++)
        {
            Span<byte> entry = batch.Slice(clocksAt + ClockEntrySize * i, ClockEntrySize);
            entry.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(entry, clocks[i].Worker);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], clocks[i].Clock);
        }
        keys = batch.Slice(HeaderSize, 8 * count);
        payloads = batch.Slice(HeaderSize + 8 * count, payloadBytes * count);
    }

    /// <summary>
    /// Reads a batch's header and checks that its lengths add up, that its keys ascend strictly and that its clock
    /// entries name ascending workers; nothing is trusted before this returns true.
    /// </summary>
    /// <param name="bytes">The batch.</param>
    /// <param name="batch">The batch, valid while <paramref name="bytes"/> is.</param>
    /// <param name="error">Why the batch was refused.</param>
    public static bool TryParse(ReadOnlySpan<byte> bytes, out RecordBatch batch, out string error)
    {
        batch = default;
        if (bytes.Length < HeaderSize)
        {
            error = $"A record batch has a {HeaderSize}-byte header; this one has {bytes.Length} bytes.";
            return false;
        }
        uint format = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        if (format != Format)
        {
            error = $"A record batch of format {format}; this version reads format {Format}.";
            return false;
        }
        uint payloadBytes = BinaryPrimitives.ReadUInt32LittleEndian(bytes[16..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(bytes[20..]);
        uint clocks = BinaryPrimitives.ReadUInt32LittleEndian(bytes[24..]);
        if (payloadBytes == 0 || payloadBytes % 4 != 0 || payloadBytes > int.MaxValue / 2 || count > int.MaxValue / 2 || clocks > int.MaxValue / 2
            || SizeOf((int)payloadBytes, (int)count, (int)clocks) != bytes.Length)
        {
            error = $"A record batch's lengths do not add up: {count} records of {payloadBytes} bytes and {clocks} clock entries in {bytes.Length} bytes.";
            return false;
        }
        batch = new RecordBatch(bytes, BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]), BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]),
            (int)payloadBytes, (int)count, (int)clocks);
        ReadOnlySpan<ulong> keys = batch.Keys;
        for (int i = 1; i < keys.Length; i++)
        {
            if (keys[i] > keys[i - 1]) continue;
            error = $"A record batch's keys must ascend strictly; key {keys[i]} follows {keys[i - 1]}.";
            batch = default;
            return false;
        }
        for (int i = 1; i < batch.ClockCount; i++)
        {
            if (batch.ClockAt(i).Worker > batch.ClockAt(i - 1).Worker) continue;
            error = "A record batch's clock entries must name ascending workers.";
            batch = default;
            return false;
        }
        error = "";
        return true;
    }

    /// <summary>
    /// Splits record batches written back to back (a request's body, a log record) into <paramref name="batches"/>,
    /// each checked as <see cref="TryParse"/> does, and counts their records; false, and why, at the first that is
    /// not whole.
    /// </summary>
    public static bool TrySplit(ReadOnlySpan<byte> bytes, List<System.Range> batches, out long records, out string error)
    {
        ArgumentNullException.ThrowIfNull(batches);
        batches.Clear();
        records = 0;
        int at = 0;
        while (at < bytes.Length)
        {
            ReadOnlySpan<byte> rest = bytes[at..];
            string which = $"Record batch {batches.Count + 1}";
            if (rest.Length < HeaderSize)
            {
                error = $"{which}: {rest.Length} bytes are left, less than a batch header ({HeaderSize}).";
                return false;
            }
            long size = SizeOf((int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(rest[16..]), int.MaxValue / 2),
                (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(rest[20..]), int.MaxValue / 2),
                (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(rest[24..]), int.MaxValue / 2));
            if (size > rest.Length)
            {
                error = $"{which}: its header says {size} bytes; {rest.Length} are left.";
                return false;
            }
            if (!TryParse(rest[..(int)size], out RecordBatch batch, out string why))
            {
                error = $"{which}: {why}";
                return false;
            }
            records += batch.Count;
            batches.Add(at..(at + (int)size));
            at += (int)size;
        }
        error = "";
        return true;
    }
}
