using System.Diagnostics.CodeAnalysis;
using FASTER.core;
using ParamDb.Protocol;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage;

/// <summary>
/// The tables this store holds rows for. The store does not decide which tables exist or which id a table gets:
/// a table directory does (<see cref="ITableDirectory"/>: locally <see cref="Local.LocalTableDirectory"/>, in a
/// cluster the server manager) and tells the store with <see cref="AddTable"/> and <see cref="DropTable"/>. The
/// store keeps a durable copy because its rows and clocks cannot be read without their table's layout: the
/// write-ahead log replays pushes by table id, and compaction drops the rows of tables that are gone.
/// </summary>
public sealed partial class ParamStore
{
    /// <summary>Largest catalog record: half a 2 MiB log page, roughly 3,000 tables with full schemas.</summary>
    private const int MaxCatalogBytes = 1 << 20;

    private readonly Lock _catalogLock = new();
    private volatile Catalog _catalog = Catalog.Empty;

    /// <summary>
    /// Adds a table under the id its directory assigned. The table and its schema are durable once this returns
    /// (in the store's durability mode), and from the next checkpoint on together with its rows.
    /// </summary>
    /// <param name="id">The table id, ≥ 1, never used before in this store (ids of deleted tables are not reused).</param>
    /// <param name="name">Table name, <c>[A-Za-z0-9_.-]{1,128}</c>, not held by a live table.</param>
    /// <param name="schema">A schema already normalized with <see cref="TableSchema.TryNormalize"/>.</param>
    /// <exception cref="ArgumentException">The name is invalid, the schema is not normalized, or the name or id is taken.</exception>
    public TableHandle AddTable(uint id, string name, TableSchema schema)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentOutOfRangeException.ThrowIfZero(id);
        if (!TableNames.IsValid(name)) throw new ArgumentException($"Invalid table name \"{name}\".", nameof(name));
        if (!schema.TryNormalize(out TableSchema normalized, out ProtocolError error) || normalized != schema)
            throw new ArgumentException($"The schema must be normalized first (TryNormalize). {error.Detail}", nameof(schema));

        TableHandle created;
        Task? durable;
        lock (_catalogLock)
        {
            Catalog current = _catalog;
            if (current.TryGet(name, out _)) throw new ArgumentException($"A table named \"{name}\" exists already.", nameof(name));
            if (id < current.NextId) throw new ArgumentException($"Table id {id} was used before in this store (the next free id is {current.NextId}).", nameof(id));
            created = new TableHandle(name, id, schema, _shape);
            if (_countingRanges) created.RangeRows = new RangeRowCounts(_ring);
            Catalog next = current.WithTable(created);
            durable = WriteCatalog(next);
            _catalog = next;
        }
        WaitDurable(durable);
        return created;
    }


    /// <summary>The lowest table id never used in this store: what a local directory assigns next.</summary>
    public uint NextTableId => _catalog.NextId;

    /// <summary>Finds a live table by name.</summary>
    public bool TryGetTable(string name, [NotNullWhen(true)] out TableHandle? table) => _catalog.TryGet(name, out table);

    /// <summary>All live tables, sorted by name (ordinal).</summary>
    public IReadOnlyList<TableHandle> ListTables() => _catalog.Sorted;

    /// <summary>
    /// Drops a table. Its rows vanish at once (a table created again under the same name gets a new id and starts
    /// from the initializer) and leave the log at the next compaction; pulls waiting on its clocks end.
    /// </summary>
    /// <returns>False when no live table has that id.</returns>
    public bool DropTable(uint id)
    {
        TableHandle? dropped;
        Task? durable;
        lock (_catalogLock)
        {
            Catalog current = _catalog;
            if (!current.TryGet(id, out dropped)) return false;
            Catalog next = current.WithoutTable(dropped!.Name);
            durable = WriteCatalog(next);
            _catalog = next;
        }
        WaitDurable(durable);
        dropped!._clocks.EndAll(ClockWaitStatus.TableDeleted);
        return true;
    }

    /// <summary>
    /// Rows and bytes of a table. Exact: rows are counted when FASTER inserts a key's first record; on
    /// <see cref="Open"/> they start from the counts the checkpoint's cut record holds (a full-log recount for a
    /// checkpoint written before those existed).
    /// </summary>
    public TableStats GetStats(TableHandle table)
    {
        ArgumentNullException.ThrowIfNull(table);
        long rows = table.Rows - table.HeldRows(_shape);   // the rows this node serves, not the copies it holds for others
        return new TableStats(rows, rows * table._layout.PayloadBytes);
    }

    /// <summary>
    /// Logs and upserts the catalog record (table id 0) inside a push-gate section, so a checkpoint orders it with
    /// the pushes. The caller holds the catalog lock and waits for the returned task after releasing it.
    /// </summary>
    private Task? WriteCatalog(Catalog next)
    {
        byte[] bytes = next.Serialize();
        if (bytes.Length > MaxCatalogBytes)
            throw new InvalidOperationException($"The table catalog would take {bytes.Length} bytes; at most {MaxCatalogBytes} fit in one log record. Delete tables first.");
        _pushGate.EnterReadLock();
        try
        {
            Task? durable = LogSystemRecord(WalRecordKind.Catalog, bytes);
            UpsertRecord(RowKey.CatalogKey, bytes);
            return durable;
        }
        finally
        {
            _pushGate.ExitReadLock();
        }
    }
}
