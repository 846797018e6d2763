using System.Diagnostics.CodeAnalysis;
using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// Which tables exist, under which schema and cluster-wide id: the authority over table metadata. Locally
/// <see cref="Local.LocalTableDirectory"/> assigns ids and tells this node's store; in a cluster the server
/// manager assigns them through consensus and every node's store learns the same (id, name, schema), so rows and
/// clocks can move between nodes unchanged.
/// </summary>
/// <remarks>
/// Concurrency: lookups (<see cref="TryGet"/>, <see cref="List"/>) are lock-free and called on every request;
/// changes may be called from many threads and are serialized by the directory.
/// </remarks>
public interface ITableDirectory
{
    /// <summary>Finds a live table by name.</summary>
    bool TryGet(string name, [NotNullWhen(true)] out TableHandle? table);

    /// <summary>All live tables, sorted by name (ordinal).</summary>
    IReadOnlyList<TableHandle> List();

    /// <summary>
    /// Creates a table, or finds the one of that name. Durable (and, in a cluster, known to every node) when the
    /// task completes.
    /// </summary>
    /// <param name="name">A valid table name (<see cref="TableNames.IsValid"/>).</param>
    /// <param name="schema">A schema already normalized with <see cref="TableSchema.TryNormalize"/>.</param>
    /// <param name="cancellationToken">Stops waiting; the change may still happen.</param>
    /// <exception cref="ArgumentException">The name is invalid or the schema is not normalized.</exception>
    ValueTask<TableCreation> CreateAsync(string name, TableSchema schema, CancellationToken cancellationToken);

    /// <summary>Deletes a table and its rows; false when no table has that name.</summary>
    ValueTask<bool> DeleteAsync(string name, CancellationToken cancellationToken);

    /// <summary>Rows and bytes of a table: in a cluster, summed over the nodes unless <paramref name="thisNodeOnly"/>.</summary>
    /// <exception cref="MetadataUnavailableException">A node that holds part of the table did not answer.</exception>
    ValueTask<TableStats> GetStatsAsync(TableHandle table, bool thisNodeOnly, CancellationToken cancellationToken);
}

/// <summary>What a <see cref="ITableDirectory.CreateAsync"/> did.</summary>
/// <param name="Outcome">Created, or why nothing changed.</param>
/// <param name="Table">The created table, or the existing one of that name.</param>
public readonly record struct TableCreation(CreateTableOutcome Outcome, TableHandle Table);
