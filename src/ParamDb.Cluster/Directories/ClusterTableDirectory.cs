using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text.Json;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Storage;

namespace ParamDb.Cluster.Directories;

/// <summary>
/// The tables of a cluster: the server manager decides and numbers them (one table id on every node), and each
/// node's <see cref="MetadataMirror"/> adds them to its store. Lookups read this node's store; a change made on a
/// follower is handed to the leader, and answered once this node has applied it, so the caller can use the table
/// on this node at once.
/// </summary>
public sealed class ClusterTableDirectory(ClusterMember member, ParamStore store) : ITableDirectory
{
    /// <summary>How long a client should wait before retrying a change that found no leader: about two elections.</summary>
    internal static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    public bool TryGet(string name, [NotNullWhen(true)] out TableHandle? table) => store.TryGetTable(name, out table);

    /// <inheritdoc />
    public IReadOnlyList<TableHandle> List() => store.ListTables();

    /// <inheritdoc />
    public async ValueTask<TableCreation> CreateAsync(string name, TableSchema schema, CancellationToken cancellationToken)
    {
        CreateTableOutcome outcome;
        try
        {
            if (member.Manager.IsLeader)
            {
                CommandResult result = await member.Manager.ProposeAsync(new CreateTable(name, schema), cancellationToken).ConfigureAwait(false);
                outcome = result.Outcome switch
                {
                    CommandOutcome.Created => CreateTableOutcome.Created,
                    CommandOutcome.AlreadyExists => CreateTableOutcome.AlreadyExists,
                    CommandOutcome.Conflict => CreateTableOutcome.Conflict,
                    _ => throw new ArgumentException(result.Detail ?? $"The cluster refused table '{name}' ({result.Outcome})."),
                };
            }
            else
            {
                using HttpResponseMessage response = await member.ForwardToLeaderAsync(HttpMethod.Put, $"/v1/tables/{name}",
                    PeerHttp.Json(JsonSerializer.SerializeToUtf8Bytes(schema, ProtocolJson.Default.TableSchema)), cancellationToken).ConfigureAwait(false);
                outcome = response.StatusCode switch
                {
                    HttpStatusCode.Created => CreateTableOutcome.Created,
                    HttpStatusCode.OK => CreateTableOutcome.AlreadyExists,
                    HttpStatusCode.Conflict => CreateTableOutcome.Conflict,
                    _ => throw await LeaderRefusedAsync(response, cancellationToken).ConfigureAwait(false),
                };
                await member.TryCatchUpAsync(cancellationToken).ConfigureAwait(false);   // the leader made the change: a failed catch-up must not report it unmade
            }
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException)
        {
            throw NoLeader(e);
        }
        catch (CommitUnknownException e)
        {
            throw CommitUnknown(e);
        }
        if (!store.TryGetTable(name, out TableHandle? table))
            throw new MetadataUnavailableException(new ProtocolError(503, ProblemCodes.Unavailable, $"Table '{name}' was committed but has not reached this node's store yet; retry."), RetryAfter);
        return new TableCreation(outcome, table);
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            if (member.Manager.IsLeader)
                return (await member.Manager.ProposeAsync(new DeleteTable(name), cancellationToken).ConfigureAwait(false)).Outcome == CommandOutcome.Applied;
            using HttpResponseMessage response = await member.ForwardToLeaderAsync(HttpMethod.Delete, $"/v1/tables/{name}", null, cancellationToken).ConfigureAwait(false);
            bool deleted = response.StatusCode switch
            {
                HttpStatusCode.NoContent => true,
                HttpStatusCode.NotFound => false,
                _ => throw await LeaderRefusedAsync(response, cancellationToken).ConfigureAwait(false),
            };
            await member.TryCatchUpAsync(cancellationToken).ConfigureAwait(false);   // the leader made the change: a failed catch-up must not report it unmade
            return deleted;
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException)
        {
            throw NoLeader(e);
        }
        catch (CommitUnknownException e)
        {
            throw CommitUnknown(e);
        }
    }

    /// <inheritdoc />
    public async ValueTask<TableStats> GetStatsAsync(TableHandle table, bool thisNodeOnly, CancellationToken cancellationToken)
    {
        TableStats here = store.GetStats(table);
        if (thisNodeOnly) return here;
        var asks = new List<Task<TableStats>>();
        foreach (var (id, http) in member.Others()) asks.Add(PeerStatsAsync(id, http, table.Name, cancellationToken));
        long rows = here.Rows, bytes = here.Bytes;
        foreach (TableStats stats in await Task.WhenAll(asks).ConfigureAwait(false))
        {
            rows += stats.Rows;
            bytes += stats.Bytes;
        }
        return new TableStats(rows, bytes);
    }

    private async Task<TableStats> PeerStatsAsync(string id, string http, string table, CancellationToken cancellationToken)
    {
        try
        {
            using HttpResponseMessage response = await member.Peers.SendAsync(HttpMethod.Get, http, $"/v1/tables/{table}?scope=node", null, cancellationToken).ConfigureAwait(false);
            byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound) return default;   // not mirrored there yet: no rows
            if (!response.IsSuccessStatusCode || JsonSerializer.Deserialize(body, ProtocolJson.Default.TableInfo) is not { } info)
                throw new HttpRequestException($"{(int)response.StatusCode}: {ClusterMember.ProblemText(body)}");
            return new TableStats(info.Rows, info.Bytes);
        }
        catch (HttpRequestException e)
        {
            throw new MetadataUnavailableException(new ProtocolError(503, ProblemCodes.Unavailable,
                $"Node '{id}' at {http} holds part of table '{table}' and did not answer ({e.Message}); its rows cannot be counted now."), RetryAfter, e);
        }
    }

    /// <summary>503 <c>no_leader</c>, with the time to retry after.</summary>
    internal static MetadataUnavailableException NoLeader(Exception inner) =>
        new(new ProtocolError(503, ProblemCodes.NoLeader, "The cluster has no leader to commit this change right now (an election is under way, or a majority of the members is unreachable). Nothing changed; retry shortly."), RetryAfter, inner);

    /// <summary>503 <c>unavailable</c> for a change whose outcome is unknown: leadership moved, or the leader's answer was lost, while it was committed.</summary>
    internal static MetadataUnavailableException CommitUnknown(CommitUnknownException inner) =>
        new(new ProtocolError(503, ProblemCodes.Unavailable, "The leader changed, or the connection to it broke, while this change was being committed: it may or may not have been made. "
            + "A table create of the same schema, or a delete, is safe to send again; look before you register a worker again."), RetryAfter, inner);

    /// <summary>The leader's refusal, as it worded it.</summary>
    internal static async Task<Exception> LeaderRefusedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        ProblemReply? problem = null;
        try
        {
            problem = JsonSerializer.Deserialize(body, ProtocolJson.Default.ProblemReply);
        }
        catch (JsonException)
        {
        }
        var error = new ProtocolError((int)response.StatusCode, problem?.Code ?? ProblemCodes.Unavailable, problem?.Detail ?? ClusterMember.ProblemText(body));
        return new MetadataUnavailableException(error, RetryAfter);
    }
}
