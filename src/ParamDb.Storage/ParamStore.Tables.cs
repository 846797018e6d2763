using System.Diagnostics.CodeAnalysis;
using FASTER.core;
using ParamDb.Protocol;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage;

/// <summary>Tables: create, look up, list, delete, statistics.</summary>
public sealed partial class ParamStore
{
    /// <summary>Largest catalog record: half a 2 MiB log page, roughly 3,000 tables with full schemas.</summary>
    private const int MaxCatalogBytes = 1 << 20;

    private readonly Lock catalogLock = new();
    private volatile Catalog catalog = Catalog.Empty;

    /// <summary>
    /// Creates a table, or finds the one of that name. The new table and its schema are durable from the next
    /// checkpoint on, together with its rows.
    /// </summary>
    /// <param name="name">Table name, <c>[A-Za-z0-9_.-]{1,128}</c>.</param>
    /// <param name="schema">A schema already normalized with <see cref="TableSchema.TryNormalize"/>.</param>
    /// <param name="table">The created table, or the existing one for <see cref="CreateTableOutcome.AlreadyExists"/> and <see cref="CreateTableOutcome.Conflict"/>.</param>
    /// <returns>Created; AlreadyExists when the same name has an identical schema; Conflict when its schema differs.</returns>
    /// <exception cref="ArgumentException">The name is invalid or the schema is not normalized.</exception>
    public CreateTableOutcome CreateTable(string name, TableSchema schema, out TableHandle table)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(schema);
        if (!TableNames.IsValid(name)) throw new ArgumentException($"Invalid table name \"{name}\".", nameof(name));
        if (!schema.TryNormalize(out TableSchema normalized, out ProtocolError error) || normalized != schema)
            throw new ArgumentException($"The schema must be normalized first (TryNormalize). {error.Detail}", nameof(schema));

        TableHandle created;
        Task? durable;
        lock (catalogLock)
        {
            Catalog current = catalog;
            if (current.TryGet(name, out TableHandle? existing))
            {
                table = existing!;
                return existing!.Schema == schema ? CreateTableOutcome.AlreadyExists : CreateTableOutcome.Conflict;
            }
            created = new TableHandle(name, current.NextId, schema, options.Ring.Count);
            Catalog next = current.WithTable(created);
            durable = WriteCatalog(next);
            catalog = next;
        }
        WaitDurable(durable);
        table = created;
        logger.TableCreated(name, created.Id, created.Dim);
        return CreateTableOutcome.Created;
    }

    /// <summary>Finds a live table by name.</summary>
    public bool TryGetTable(string name, [NotNullWhen(true)] out TableHandle? table) => catalog.TryGet(name, out table);

    /// <summary>All live tables, sorted by name (ordinal).</summary>
    public IReadOnlyList<TableHandle> ListTables() => catalog.Sorted;

    /// <summary>
    /// Deletes a table. Its rows vanish at once (a re-created table of the same name gets a new id and starts from
    /// the initializer) and leave the log at the next compaction.
    /// </summary>
    /// <returns>False when no table has that name.</returns>
    public bool DeleteTable(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        TableHandle? deleted;
        Task? durable;
        lock (catalogLock)
        {
            Catalog current = catalog;
            if (!current.TryGet(name, out deleted)) return false;
            Catalog next = current.WithoutTable(name);
            durable = WriteCatalog(next);
            catalog = next;
        }
        WaitDurable(durable);
        deleted!.Clocks.EndAll(ClockWaitStatus.TableDeleted);
        logger.TableDeleted(name, deleted.Id);
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
        long rows = table.Rows;
        return new TableStats(rows, rows * table.Layout.PayloadBytes);
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
        pushGate.EnterReadLock();
        try
        {
            Task? durable = LogSystemRecord(WalRecordKind.Catalog, bytes);
            UpsertRecord(RowKey.CatalogKey, bytes);
            return durable;
        }
        finally
        {
            pushGate.ExitReadLock();
        }
    }
}
