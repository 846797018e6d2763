using System.Buffers.Binary;

namespace ParamDb.Storage.Durability;

/// <summary>
/// The value of the record <see cref="RowKey.WalCutKey"/>: what a checkpoint holds, written with the push gate
/// held exclusively just before FASTER moves to the next version, so every figure in it is exact for the
/// checkpoint. All little-endian; fields are only ever appended.
/// <code>
/// offset  size    field
/// 0       8       i64 cut      LSN of the newest write-ahead log record the checkpoint holds
///                              (format 0, written before this build, is these 8 bytes alone)
/// 8       4       u32 format   = 1
/// 12      4       u32 nextId   the catalog's next table id at the cut: at least every table id rows use
/// 16      4       u32 tables   T, the live tables
/// 20      4       u32 reserved = 0
/// 24      T × 16  (u32 table id, u32 reserved = 0, i64 rows), each live table once
/// </code>
/// </summary>
/// <remarks>
/// Why the counts are here: without them a restart had to visit every record of the recovered log to count rows
/// (1.2 s of an 11.4 s restart with 1 GiB of rows). Why <c>nextId</c>: a store recovered from a checkpoint taken
/// before the push gate existed may hold rows of a table id its catalog record never named; the recount raised
/// the in-memory next id past them, and the catalog record keeps its old value until the next table change. This
/// field carries the raised value into every later checkpoint, so an id that rows already use is never handed out.
/// </remarks>
internal static class CutRecord
{
    /// <summary>The format this build writes.</summary>
    public const uint Format = 1;

    /// <summary>Bytes before the per-table entries.</summary>
    public const int HeaderSize = 24;

    /// <summary>Bytes per table entry.</summary>
    public const int EntrySize = 16;

    /// <summary>Bytes of the record for <paramref name="tables"/> tables.</summary>
    public static int SizeOf(int tables) => HeaderSize + EntrySize * tables;

    /// <summary>Writes the record into <paramref name="destination"/>, exactly <see cref="SizeOf"/> bytes.</summary>
    public static void Write(Span<byte> destination, long cut, uint nextId, ReadOnlySpan<(uint Id, long Rows)> tables)
    {
        BinaryPrimitives.WriteInt64LittleEndian(destination, cut);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Format);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], nextId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], (uint)tables.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], 0);
        for (int i = 0; i < tables.Length; i++)
        {
            Span<byte> entry = destination.Slice(HeaderSize + EntrySize * i, EntrySize);
            BinaryPrimitives.WriteUInt32LittleEndian(entry, tables[i].Id);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], 0);
            BinaryPrimitives.WriteInt64LittleEndian(entry[8..], tables[i].Rows);
        }
    }

    /// <summary>
    /// Reads the cut, and the contents when the record has them. A record of 8 bytes (format 0) or one this build
    /// does not understand yields the cut alone (<paramref name="contents"/> null): recovery then counts rows by
    /// scanning the log, as before the counts existed.
    /// </summary>
    /// <returns>False when the record is too short to hold even the cut.</returns>
    public static bool TryRead(ReadOnlySpan<byte> record, out long cut, out CutContentsRecord? contents)
    {
        contents = null;
        cut = 0;
        if (record.Length < sizeof(long)) return false;
        cut = BinaryPrimitives.ReadInt64LittleEndian(record);
        if (record.Length < HeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(record[8..]) != Format) return true;
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(record[16..]);
        if (count > (record.Length - HeaderSize) / EntrySize || record.Length != SizeOf((int)count)) return true;
        var rows = new Dictionary<uint, long>((int)count);
        for (int i = 0; i < (int)count; i++)
        {
            ReadOnlySpan<byte> entry = record.Slice(HeaderSize + EntrySize * i, EntrySize);
            long n = BinaryPrimitives.ReadInt64LittleEndian(entry[8..]);
            if (n < 0 || !rows.TryAdd(BinaryPrimitives.ReadUInt32LittleEndian(entry), n)) return true;   // not a record this build wrote
        }
        contents = new CutContentsRecord(BinaryPrimitives.ReadUInt32LittleEndian(record[12..]), rows);
        return true;
    }
}

/// <summary>What a format-1 cut record says beyond the cut.</summary>
/// <param name="NextId">The catalog's next table id at the cut.</param>
/// <param name="RowsByTable">Rows of each live table at the cut, by table id.</param>
internal sealed record CutContentsRecord(uint NextId, Dictionary<uint, long> RowsByTable);
