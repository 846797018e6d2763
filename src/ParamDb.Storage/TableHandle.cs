using ParamDb.Protocol;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>
/// One live table: its name, id and schema, plus the compiled initializer, updater and row layout the hot paths
/// use. Handles are immutable; a deleted and re-created table gets a new handle with a new <see cref="Id"/>.
/// </summary>
public sealed class TableHandle
{
    private long _rows;
    private RangeRowCounts? _rangeRows;   // null while every range of the store is served: nothing to leave out

    internal TableHandle(string name, uint id, TableSchema schema, Versions.RangeShape ranges)
    {
        Name = name;
        RingHash = ParamDb.Protocol.Ring.NameHash(name);
        _clocks = new TableClocks(ranges);
        Id = id;
        Schema = schema;
        Dim = schema.Dim;
        _initializer = RowInitializer.From(schema.Init ?? new InitializerSpec());
        _updater = RowUpdater.From(schema.Updater ?? new UpdaterSpec());
        _layout = _updater.LayoutFor(schema.Dim);
    }

    /// <summary>Table name, <c>[A-Za-z0-9_.-]{1,128}</c>.</summary>
    public string Name { get; }

    /// <summary>Store-wide table id (≥ 1), never reused after a delete.</summary>
    public uint Id { get; }

    /// <summary>The normalized schema the table was created with.</summary>
    public TableSchema Schema { get; }

    /// <summary>Floats per row.</summary>
    public int Dim { get; }

    // Fields, not properties: the RMW callbacks call into these per row, and a struct property returns a copy.
    internal readonly RowInitializer _initializer;
    internal readonly RowUpdater _updater;
    internal readonly RowLayout _layout;

    /// <summary>The table name's hash (<see cref="ParamDb.Protocol.Ring.NameHash"/>), from which <see cref="ParamDb.Protocol.Ring.Position"/> places its blocks.</summary>
    public readonly ulong RingHash;

    /// <summary>The table's vector clocks on this node and the pulls waiting on them.</summary>
    internal readonly TableClocks _clocks;

    /// <summary>Distinct stored rows, counted when FASTER inserts a new record for a key (PostInitialUpdater).</summary>
    internal long Rows => Volatile.Read(ref _rows);

    internal void CountNewRow(ulong key)
    {
        Interlocked.Increment(ref _rows);
        Volatile.Read(ref _rangeRows)?.CountNew(RingHash, key);
    }

    internal void SetRows(long count) => Volatile.Write(ref _rows, count);

    /// <summary>The table's rows per range of the store, or null when the store does not count them (every range served).</summary>
    internal RangeRowCounts? RangeRows
    {
        get => Volatile.Read(ref _rangeRows);
        set => Volatile.Write(ref _rangeRows, value);
    }

    /// <summary>
    /// Of <see cref="Rows"/>, those in ranges <paramref name="shape"/> holds as copies for other nodes rather than
    /// serves (docs/replication.md).
    /// </summary>
    internal long HeldRows(RangeShape shape) => RangeRows?.Held(shape) ?? 0;

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (id {Id}, dim {Dim})";
}
