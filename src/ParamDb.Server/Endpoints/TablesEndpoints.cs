using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Storage;

namespace ParamDb.Server.Endpoints;

/// <summary>Table management (docs/tables.md): <c>PUT/GET/DELETE /v1/tables/{name}</c>, <c>GET /v1/tables</c>.</summary>
public static class TablesEndpoints
{
    /// <summary>Largest schema body accepted; a schema is a few hundred bytes.</summary>
    private const long MaxSchemaBytes = 64 * 1024;

    /// <summary>Maps the table routes.</summary>
    public static RouteGroupBuilder MapTables(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/tables").WithTags("Tables");
        group.MapPut("/{name}", CreateAsync)
            .WithName("CreateTable")
            .WithSummary("Create a table; re-creating an identical one is a no-op (200), a different schema is 409.")
            .Accepts<TableSchema>(MediaTypes.Json);
        group.MapGet("/", ListAsync).WithName("ListTables").WithSummary("List tables with their schemas and statistics.");
        group.MapGet("/{name}", GetAsync).WithName("GetTable").WithSummary("A table's schema and statistics (rows, bytes).");
        group.MapDelete("/{name}", DeleteAsync).WithName("DeleteTable").WithSummary("Delete a table and its rows.");
        return group;
    }

    private static async Task<Results<Created<TableInfo>, Ok<TableInfo>, ProblemHttpResult>> CreateAsync(string name, HttpRequest request, StoreHost host)
    {
        if (!TableNames.IsValid(name)) return Problems.InvalidName(name);
        if (host.Node is not { } node) return Problems.Unavailable();
        if (!Negotiation.TryRequestFormat(request, out var format, out var error) || format != BodyFormat.Json)
            return Problems.Of(415, ProblemCodes.UnsupportedMediaType, $"A table schema is JSON: send Content-Type: {MediaTypes.Json}.");
        var (body, readError) = await RequestBody.ReadAsync(request, MaxSchemaBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        TableSchema? schema;
        using (body)
        {
            try
            {
                schema = JsonSerializer.Deserialize(body.Span, ProtocolJson.Default.TableSchema);
            }
            catch (JsonException e)
            {
                return Problems.Of(400, ProblemCodes.InvalidSchema, $"The schema does not parse: {e.Message}");
            }
        }
        if (schema is null) return Problems.Of(400, ProblemCodes.InvalidSchema, "The schema is null; send {\"dim\": 64, ...}.");
        if (!schema.TryNormalize(out var normalized, out error)) return Problems.From(error);

        CancellationToken ct = request.HttpContext.RequestAborted;
        var (outcome, table) = await node.Tables.CreateAsync(name, normalized, ct);
        switch (outcome)
        {
            case CreateTableOutcome.Created:
                // A new table has no rows anywhere: nothing to ask the other nodes (one of which may be down).
                return TypedResults.Created($"/v1/tables/{name}", await DescribeAsync(node, table, ct, thisNodeOnly: true));
            case CreateTableOutcome.AlreadyExists:
                return TypedResults.Ok(await DescribeAsync(node, table, ct));
            default:
                return Problems.Of(409, ProblemCodes.TableExists,
                    $"Table '{name}' exists with another schema: {JsonSerializer.Serialize(table.Schema, ProtocolJson.Default.TableSchema)}. Delete it first or use another name.");
        }
    }

    /// <param name="host">The node.</param>
    /// <param name="ct">The request's end.</param>
    /// <param name="scope"><c>node</c>: rows and bytes of this node alone; default: summed over a cluster's nodes.</param>
    private static async Task<Results<Ok<TableList>, ProblemHttpResult>> ListAsync(StoreHost host, CancellationToken ct, string? scope = null)
    {
        if (Scopes.Reject(scope) is { } badScope) return badScope;
        if (host.Node is not { } node) return Problems.Unavailable();
        var tables = node.Tables.List();
        var infos = new List<TableInfo>(tables.Count);
        bool thisNodeOnly = Scopes.ThisNodeOnly(scope);
        foreach (var t in tables) infos.Add(await DescribeAsync(node, t, ct, thisNodeOnly));
        return TypedResults.Ok(new TableList { Tables = infos });
    }

    /// <param name="name">The table.</param>
    /// <param name="host">The node.</param>
    /// <param name="ct">The request's end.</param>
    /// <param name="scope"><c>node</c>: rows and bytes of this node alone; default: summed over a cluster's nodes.</param>
    private static async Task<Results<Ok<TableInfo>, ProblemHttpResult>> GetAsync(string name, StoreHost host, CancellationToken ct, string? scope = null)
    {
        if (Scopes.Reject(scope) is { } badScope) return badScope;
        var (node, table, problem) = await DataEndpoints.OpenAsync(host, name, ct);
        return problem ?? (Results<Ok<TableInfo>, ProblemHttpResult>)TypedResults.Ok(await DescribeAsync(node!, table!, ct, thisNodeOnly: Scopes.ThisNodeOnly(scope)));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string name, StoreHost host, CancellationToken ct)
    {
        if (!TableNames.IsValid(name)) return Problems.InvalidName(name);
        if (host.Node is not { } node) return Problems.Unavailable();
        return await node.Tables.DeleteAsync(name, ct) ? TypedResults.NoContent() : Problems.TableNotFound(name);
    }


    private static async ValueTask<TableInfo> DescribeAsync(NodeServices node, TableHandle table, CancellationToken ct, bool thisNodeOnly = false)
    {
        var stats = await node.Tables.GetStatsAsync(table, thisNodeOnly, ct);
        return new TableInfo { Name = table.Name, Schema = table.Schema, Rows = stats.Rows, Bytes = stats.Bytes };
    }
}
