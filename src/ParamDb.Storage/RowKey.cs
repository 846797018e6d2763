using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FASTER.core;

namespace ParamDb.Storage;

/// <summary>
/// The FASTER key: one row of one table. Blittable, 16 bytes, so FASTER stores it inline in the record.
/// <code>
/// offset  size  field
/// 0       8     Key    the row's uint64 key
/// 8       4     Table  table id; 0 is reserved for the catalog record (see <see cref="Catalog"/>)
/// 12      4     reserved, 0
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal readonly struct RowKey : IEquatable<RowKey>
{
    /// <summary>The row's key within its table.</summary>
    [FieldOffset(0)] public readonly ulong Key;
    /// <summary>Table id, never reused; 0 is the catalog.</summary>
    [FieldOffset(8)] public readonly uint Table;
    [FieldOffset(12)] private readonly uint reserved;

    public RowKey(uint table, ulong key)
    {
        Key = key;
        Table = table;
        reserved = 0;
    }

    /// <summary>The key of the single record that holds the table catalog.</summary>
    public static RowKey CatalogKey => new(0, 0);

    public bool Equals(RowKey other) => Key == other.Key && Table == other.Table;
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
        (long)Hashing.Mix64(key.Key ^ Hashing.Mix64(key.Table + Hashing.Golden));

    public long GetHashCode64(ref RowKey k) => Hash(k);

    public bool Equals(ref RowKey k1, ref RowKey k2) => k1.Key == k2.Key && k1.Table == k2.Table;
}
