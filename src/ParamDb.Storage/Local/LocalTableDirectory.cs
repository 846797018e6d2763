using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using ParamDb.Protocol;

namespace ParamDb.Storage.Local;

/// <summary>
/// The table directory of a single node: this node decides which tables exist and assigns their ids, from the
/// store's own next free id (ids are never reused, so a deleted table's rows can never be read as a new table's).
/// </summary>
/// <param name="store">The node's store, which keeps the durable copy of the tables.</param>
/// <param name="logger">Receives table created and deleted events.</param>
public sealed class LocalTableDirectory(ParamStore store, ILogger logger) : ITableDirectory
{
    /// <summary>Serializes changes: the check for an existing name and the id assignment must be one step.</summary>
    private readonly Lock _changes = new();

    /// <inheritdoc />
    public bool TryGet(string name, [NotNullWhen(true)] out TableHandle? table) => store.TryGetTable(name, out table);

    /// <inheritdoc />
    public IReadOnlyList<TableHandle> List() => store.ListTables();

    /// <inheritdoc />
    public ValueTask<TableCreation> CreateAsync(string name, TableSchema schema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(schema);
        TableHandle created;
        lock (_changes)
        {
            if (store.TryGetTable(name, out TableHandle? existing))
                return new(new TableCreation(existing.Schema == schema ? CreateTableOutcome.AlreadyExists : CreateTableOutcome.Conflict, existing));
            created = store.AddTable(store.NextTableId, name, schema);
        }
        logger.TableCreated(name, created.Id, created.Dim);
        return new(new TableCreation(CreateTableOutcome.Created, created));
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        TableHandle? table;
        lock (_changes)
        {
            if (!store.TryGetTable(name, out table) || !store.DropTable(table.Id)) return new(false);
        }
        logger.TableDeleted(name, table.Id);
        return new(true);
    }

    /// <inheritdoc />
    public ValueTask<TableStats> GetStatsAsync(TableHandle table, bool thisNodeOnly, CancellationToken cancellationToken) => new(store.GetStats(table));
}
