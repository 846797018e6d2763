using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ParamDb.Storage.Durability;

/// <summary>What a write-ahead log record holds.</summary>
internal enum WalRecordKind : byte
{
    /// <summary>A push or tick: rows folded in by the table's updater, with the worker's stamp.</summary>
    Push = 1,
    /// <summary>The whole table catalog, as written to its system record after a create or delete.</summary>
    Catalog = 2,
    /// <summary>The whole worker registry, as written to its system record after a register or remove.</summary>
    Registry = 3,
    /// <summary>
    /// Rows overwritten by an import: values as given, optimizer state reset as for a new row; no updater, no
    /// stamp. Laid out as a push, so the same reader parses both.
    /// </summary>
    SetRows = 4,
    /// <summary>Transferred records (<see cref="Transfer.RecordBatch"/>es of one table, back to back), after the system header, verbatim.</summary>
    Records = 5,
    /// <summary>Dropped ranges: u32 table id, then u64 each range's ring token (one or more), after the system header.</summary>
    DropRange = 6,
    /// <summary>The store's ranges changed (<see cref="ParamStore.SetRanges"/>): after the system header, the ranges record (<see cref="Versions.RangesRecord"/>: tokens and which are served).</summary>
    Ranges = 7,
}

/// <summary>
/// The payloads of write-ahead log records (the framing around them is <see cref="WalFormat"/>'s).
/// All integers little-endian.
/// <code>
/// push / tick:
/// offset  size            field
/// 0       1               kind = 1
/// 1       1               flags: bit 0 = the keys are the range first … first+count-1
/// 2       2               reserved, 0
/// 4       4               table id
/// 8       4               worker (0: none)
/// 12      4               count: rows
/// 16      8               clock (0: none)
/// 24      8               first key of a range, else 0
/// 32      8·count         keys, ascending (absent for a range)
/// …       4·count·dim     values, row-major (dim comes from the table, which the log already describes)
///
/// set rows (one batch of an import): the push layout with kind = 4, flags 0 (never a range), worker 0, clock 0
///
/// catalog / registry / records / drop range / ranges:
/// 0       1               kind = 2, 3, 5, 6 or 7
/// 1       7               reserved, 0
/// 8       …               the system record's bytes, exactly as stored; record batches back to back; or
///                         u32 table id, u64 range token; or the ranges record (tokens, served bits)
/// </code>
/// A push names its table by id, not name: a table deleted and created again under the same name gets a new id,
/// so a replayed push never lands in the wrong one.
/// </summary>
internal static class WalRecord
{
    /// <summary>Bytes before a push's keys.</summary>
    public const int PushHeaderSize = 32;

    /// <summary>Bytes before a system record's value.</summary>
    public const int SystemHeaderSize = 8;

    private const byte RangeFlag = 1;

    /// <summary>Writes a push's fixed header.</summary>
    public static void WritePushHeader(Span<byte> destination, uint table, bool isRange, ulong first, int count, WorkerStamp stamp)
    {
        destination[..PushHeaderSize].Clear();
        destination[0] = (byte)WalRecordKind.Push;
        destination[1] = isRange ? RangeFlag : (byte)0;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], table);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], stamp.Worker);
        BinaryPrimitives.WriteInt32LittleEndian(destination[12..], count);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], stamp.Clock);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], isRange ? first : 0);
    }

    /// <summary>Writes the header of a set-rows record: a push header with its own kind and no stamp.</summary>
    public static void WriteSetRowsHeader(Span<byte> destination, uint table, int count)
    {
        WritePushHeader(destination, table, isRange: false, first: 0, count, default);
        destination[0] = (byte)WalRecordKind.SetRows;
    }

    /// <summary>Writes a system record's header.</summary>
    public static void WriteSystemHeader(Span<byte> destination, WalRecordKind kind)
    {
        destination[..SystemHeaderSize].Clear();
        destination[0] = (byte)kind;
    }

    /// <summary>The kind of a record, or 0 for an empty payload.</summary>
    public static WalRecordKind KindOf(ReadOnlySpan<byte> payload) => payload.IsEmpty ? 0 : (WalRecordKind)payload[0];

    /// <summary>The table id a push record names; false when the record is too short to hold one.</summary>
    public static bool TryReadPushTable(ReadOnlySpan<byte> payload, out uint table)
    {
        table = payload.Length >= PushHeaderSize ? BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]) : 0;
        return payload.Length >= PushHeaderSize;
    }

    /// <summary>
    /// Reads a push or set-rows record of a table of width <paramref name="dim"/>; false when its lengths do not
    /// add up.
    /// </summary>
    /// <param name="payload">The record.</param>
    /// <param name="dim">The row width of the table it names.</param>
    /// <param name="push">The push, valid while <paramref name="payload"/> is.</param>
    public static bool TryReadPush(ReadOnlySpan<byte> payload, int dim, out WalPush push)
    {
        push = default;
        if (payload.Length < PushHeaderSize) return false;
        bool isRange = (payload[1] & RangeFlag) != 0;
        var stamp = new WorkerStamp(BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]), BinaryPrimitives.ReadUInt64LittleEndian(payload[16..]));
        int count = BinaryPrimitives.ReadInt32LittleEndian(payload[12..]);
        ulong first = BinaryPrimitives.ReadUInt64LittleEndian(payload[24..]);
        long keyBytes = isRange ? 0 : 8L * count;
        ReadOnlySpan<byte> rest = payload[PushHeaderSize..];
        if (count < 0 || rest.Length != keyBytes + 4L * count * dim) return false;
        push = new WalPush(stamp, isRange, first, count,
            MemoryMarshal.Cast<byte, ulong>(rest[..(int)keyBytes]),
            MemoryMarshal.Cast<byte, float>(rest[(int)keyBytes..]));
        return true;
    }
}

/// <summary>A push read back from the log.</summary>
internal readonly ref struct WalPush(WorkerStamp stamp, bool isRange, ulong first, int count, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values)
{
    public WorkerStamp Stamp { get; } = stamp;
    public bool IsRange { get; } = isRange;
    public ulong First { get; } = first;
    public int Count { get; } = count;
    public ReadOnlySpan<ulong> Keys { get; } = keys;
    public ReadOnlySpan<float> Values { get; } = values;
}
