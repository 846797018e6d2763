using System.Buffers.Binary;
using ParamDb.Protocol;

namespace ParamDb.Storage.Versions;

/// <summary>
/// The stored form of one worker's vector clock on one table: the value of the record
/// <see cref="RowKey.ClockKey"/>(table, worker), written in the same FASTER store as the rows it describes, so
/// a checkpoint holds rows and clocks at one cut. Ranges are named by their ring token, not their index, so
/// the clocks can move with their ranges when the ring changes.
/// <code>
/// offset  size    field
/// 0       4       u32 format = 1
/// 4       4       u32 ranges R
/// 8       R × 16  (u64 token, u64 clock), tokens ascending
/// </code>
/// </summary>
internal static class ClockRecord
{
    private const uint Format = 1;

    /// <summary>Bytes of the record for <paramref name="ranges"/> ranges.</summary>
    public static int SizeOf(int ranges) => 8 + 16 * ranges;

    /// <summary>Writes <paramref name="clocks"/> (one per token of <paramref name="ring"/>).</summary>
    public static void Write(Span<byte> destination, Ring ring, ReadOnlySpan<ulong> clocks)
    {
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Format);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)tokens.Length);
        for (int i = 0; i < tokens.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[(8 + 16 * i)..], tokens[i]);
            BinaryPrimitives.WriteUInt64LittleEndian(destination[(16 + 16 * i)..], clocks[i]);
        }
    }

    /// <summary>
    /// Reads a record into <paramref name="clocks"/> (indexed by the ranges of <paramref name="ring"/>); tokens the
    /// ring does not have are ignored, ranges the record does not name stay 0.
    /// </summary>
    /// <exception cref="InvalidDataException">The record is not a clock record this version reads.</exception>
    public static void Read(ReadOnlySpan<byte> record, Ring ring, Span<ulong> clocks)
    {
        if (record.Length < 8 || BinaryPrimitives.ReadUInt32LittleEndian(record) != Format)
            throw new InvalidDataException("A stored vector-clock record has an unknown format.");
        uint ranges = BinaryPrimitives.ReadUInt32LittleEndian(record[4..]);
        if (record.Length != SizeOf((int)Math.Min(ranges, int.MaxValue / 16)))
            throw new InvalidDataException($"A stored vector-clock record of {ranges} ranges has {record.Length} bytes.");
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        for (int i = 0; i < (int)ranges; i++)
        {
            ulong token = BinaryPrimitives.ReadUInt64LittleEndian(record[(8 + 16 * i)..]);
            int r = tokens.BinarySearch(token);
            if (r >= 0) clocks[r] = BinaryPrimitives.ReadUInt64LittleEndian(record[(16 + 16 * i)..]);
        }
    }
}
