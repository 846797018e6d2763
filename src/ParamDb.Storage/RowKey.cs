using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FASTER.core;

namespace ParamDb.Storage;

/// <summary>
/// The FASTER key: one row of one table. Blittable, 16 bytes, so FASTER stores it inline in the record.
/// <code>
/// offset  size  field
/// 0       8     Key    the row's uint64 key
/// 8       4     Table  table id; 0 holds the system records (key 0 the catalog, key 1 the worker registry,
///                      key 2 the checkpoint's write-ahead log cut)
/// 12      4     Kind   0 a row (or system record), 1 a vector-clock record: Key is the worker id
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal readonly struct RowKey : IEquatable<RowKey>
{
    /// <summary>The row's key within its table.</summary>
    [FieldOffset(0)] public readonly ulong Key;
    /// <summary>Table id, never reused; 0 is the catalog.</summary>
    [FieldOffset(8)] public readonly uint Table;
    /// <summary>What the record holds: <see cref="RowKind"/>.</summary>
    [FieldOffset(12)] public readonly RowKind Kind;

    public RowKey(uint table, ulong key, RowKind kind = RowKind.Row)
    {
        Key = key;
        Table = table;
        Kind = kind;
    }

    /// <summary>The key of the single record that holds the table catalog.</summary>
    public static RowKey CatalogKey => new(0, 0);

    /// <summary>The key of the single record that holds the worker registry.</summary>
    public static RowKey WorkersKey => new(0, 1);

    /// <summary>
    /// The key of the record that holds a checkpoint's cut: the LSN of the newest write-ahead log record the
    /// checkpoint contains, then each table's rows and the next table id (layout: <see cref="Durability.CutRecord"/>).
    /// </summary>
    public static RowKey WalCutKey => new(0, 2);

    /// <summary>The key of the record that holds the ring tokens the store keeps clocks for (<see cref="ParamStore.Ranges"/>), once they were set.</summary>
    public static RowKey RangesKey => new(0, 3);

    /// <summary>The key of a worker's vector clock on one table.</summary>
    public static RowKey ClockKey(uint table, uint worker) => new(table, worker, RowKind.Clock);

    public bool Equals(RowKey other) => Key == other.Key && Table == other.Table && Kind == other.Kind;
    public override bool Equals(object? obj) => obj is RowKey other && Equals(other);
    public override int GetHashCode() => (int)RowKeyComparer.Hash(this);
    public override string ToString() => $"{Table}:{Key}";
}

/// <summary>
/// Hash and equality for <see cref="RowKey"/>. FASTER takes the bucket from the low bits and a 14-bit tag from
/// the high bits, so both must be well mixed: dense keys 0, 1, 2… of one table would otherwise fill buckets in
/// runs. Mixing the table id in first keeps equal keys of different tables apart.
/// </summary>
internal sealed class RowKeyComparer : IFasterEqualityComparer<RowKey>
{
    public static readonly RowKeyComparer Instance = new();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Hash(in RowKey key) =>
        // Kind 0 hashes as before kinds existed, so stores written then are still found.
        (long)Hashing.Mix64(key.Key ^ Hashing.Mix64(key.Table + Hashing.Golden + ((ulong)key.Kind << 32)));

    public long GetHashCode64(ref RowKey k) => Hash(k);

    public bool Equals(ref RowKey k1, ref RowKey k2) => k1.Key == k2.Key && k1.Table == k2.Table && k1.Kind == k2.Kind;
}

/// <summary>What a FASTER record holds.</summary>
internal enum RowKind : uint
{
    /// <summary>A table row, or (table 0) a system record.</summary>
    Row = 0,
    /// <summary>One worker's vector clock over the ranges of one table (see <see cref="Versions.ClockRecord"/>).</summary>
    Clock = 1,
}
