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
        group.MapGet("/", List).WithName("ListTables").WithSummary("List tables with their schemas and statistics.");
        group.MapGet("/{name}", Get).WithName("GetTable").WithSummary("A table's schema and statistics (rows, bytes).");
        group.MapDelete("/{name}", Delete).WithName("DeleteTable").WithSummary("Delete a table and its rows.");
        return group;
    }

    private static async Task<Results<Created<TableInfo>, Ok<TableInfo>, ProblemHttpResult>> CreateAsync(string name, HttpRequest request, StoreHost host)
    {
        if (!TableNames.IsValid(name)) return Problems.InvalidName(name);
        if (host.Store is not { } store) return Problems.Unavailable();
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

        switch (store.CreateTable(name, normalized, out var table))
        {
            case CreateTableOutcome.Created:
                return TypedResults.Created($"/v1/tables/{name}", Describe(store, table));
            case CreateTableOutcome.AlreadyExists:
                return TypedResults.Ok(Describe(store, table));
            default:
                return Problems.Of(409, ProblemCodes.TableExists,
                    $"Table '{name}' exists with another schema: {JsonSerializer.Serialize(table.Schema, ProtocolJson.Default.TableSchema)}. Delete it first or use another name.");
        }
    }

    private static Results<Ok<TableList>, ProblemHttpResult> List(StoreHost host)
    {
        if (host.Store is not { } store) return Problems.Unavailable();
        var tables = store.ListTables();
        var infos = new List<TableInfo>(tables.Count);
        foreach (var t in tables) infos.Add(Describe(store, t));
        return TypedResults.Ok(new TableList { Tables = infos });
    }

    private static Results<Ok<TableInfo>, ProblemHttpResult> Get(string name, StoreHost host) =>
        DataEndpoints.TryOpen(host, name, out var store, out var table, out var problem)
            ? TypedResults.Ok(Describe(store, table))
            : problem;

    private static Results<NoContent, ProblemHttpResult> Delete(string name, StoreHost host)
    {
        if (!TableNames.IsValid(name)) return Problems.InvalidName(name);
        if (host.Store is not { } store) return Problems.Unavailable();
        return store.DeleteTable(name) ? TypedResults.NoContent() : Problems.TableNotFound(name);
    }

    private static TableInfo Describe(ParamStore store, TableHandle table)
    {
        var stats = store.GetStats(table);
        return new TableInfo { Name = table.Name, Schema = table.Schema, Rows = stats.Rows, Bytes = stats.Bytes };
    }
}
