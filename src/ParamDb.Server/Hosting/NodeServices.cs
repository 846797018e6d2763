using System.Diagnostics.CodeAnalysis;
using ParamDb.Protocol;
using ParamDb.Storage;

namespace ParamDb.Server.Hosting;

/// <summary>
/// The seams the endpoints and the stream reach the node through (docs/design.md): the data path, the table and
/// worker directories, range ownership and the storage operations. The host picks the implementations (one node
/// or a cluster); nothing above it knows which.
/// </summary>
/// <param name="Data">Push, pull, tick and clock waits.</param>
/// <param name="Tables">Which tables exist.</param>
/// <param name="Workers">Registered workers and their leases.</param>
/// <param name="Ranges">The ranges this node owns.</param>
/// <param name="Storage">Checkpoints, imports and exports.</param>
public sealed record NodeServices(IDataPlane Data, ITableDirectory Tables, IWorkerDirectory Workers, IRangeOwnership Ranges, INodeStorage Storage)
{
    /// <summary>Whole-record transfer of this node's ranges (docs/replication.md): the peer endpoints use it.</summary>
    public ParamDb.Storage.Transfer.IRangeTransfer? Transfer { get; init; }

    /// <summary>This node's cluster membership; null on a single node.</summary>
    public ParamDb.Cluster.Membership.ClusterMember? Cluster { get; init; }

    /// <summary>What ships this node's pushes to its backups; null on a single node.</summary>
    public ParamDb.Cluster.Replication.Replicator? Replicator { get; init; }

    /// <summary>
    /// Finds a live table like <see cref="TryResolve"/>; on a cluster member that does not know the name, first
    /// catches up with the server manager (a read barrier), since a table created a moment ago through another node
    /// may not have reached this one yet: a client that creates a table through one node and pushes straight to
    /// another must not be told it does not exist.
    /// </summary>
    /// <exception cref="MetadataUnavailableException">A cluster member that does not know the table found no
    /// leader to check with (503 <c>no_leader</c>, not a 404 it cannot vouch for).</exception>
    public async ValueTask<(TableHandle? Table, ProtocolError Error)> ResolveAsync(string table, CancellationToken cancellationToken)
    {
        if (TryResolve(table, out TableHandle? handle, out ProtocolError error) || Cluster is not { } member || error.Status != 404) return (handle, error);
        await member.CatchUpForUnknownTableAsync(table, cancellationToken).ConfigureAwait(false);
        TryResolve(table, out handle, out error);
        return (handle, error);
    }

    /// <summary>Finds a live table by a name from a request, or the problem that stops the request.</summary>
    public bool TryResolve(string table, [NotNullWhen(true)] out TableHandle? handle, out ProtocolError error)
    {
        handle = null;
        if (!TableNames.IsValid(table))
        {
            error = DataErrors.InvalidName(table);
            return false;
        }
        if (!Tables.TryGet(table, out handle))
        {
            error = DataErrors.TableNotFound(table);
            return false;
        }
        error = default;
        return true;
    }
}
