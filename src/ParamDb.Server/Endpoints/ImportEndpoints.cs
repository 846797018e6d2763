using System.Net.Mime;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Cluster.Files;
using ParamDb.Protocol;
using ParamDb.Server.Data;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;
using ParamDb.Storage;
using ParamDb.Storage.Import;

namespace ParamDb.Server.Endpoints;

/// <summary>
/// Table import (docs/durability.md, docs/export.md): <c>POST /v1/tables/{table}/import</c> loads a safetensors file in the
/// export's layout, creating the table from the file's schema when it is missing.
/// </summary>
public static class ImportEndpoints
{
    /// <summary>Maps the import route.</summary>
    public static RouteGroupBuilder MapImport(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/tables/{table}").WithTags("Export");
        group.MapPost("/import", ImportAsync)
            .WithName("ImportTable")
            .WithSummary("Load a safetensors file in the export's layout: creates the table from the file's schema when it is missing (201), "
                + "else overwrites the file's rows of a table of the same schema (200); a different schema is 409.")
            .WithDescription("Body: the file (application/octet-stream), up to --max-import bytes; it is spooled to disk and checked in full "
                + "(header, tensors, schema metadata, length, every key strictly ascending and below maxKey) before anything is applied, "
                + "and, unless the schema has allowNonFinite, every value finite (else 400 non_finite_value naming the first bad row), "
                + "so a bad file is a 400 that changes nothing. Each row gets the file's values and the "
                + "optimizer state of a new row; rows not in the file are kept; vector clocks do not move. Rows go through the "
                + "write-ahead log in batches of at most 4 MiB, and the reply comes once all are durable. Not atomic: a crash part-way "
                + "leaves some batches applied, and running the import again completes it (it is idempotent). On a cluster the node asked "
                + "splits the checked file by the ring and sends each node its own rows (scope=node, which only cluster peers send).")
            .Accepts<byte[]>(MediaTypeNames.Application.Octet)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status421MisdirectedRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return group;
    }

    // Spools, checks, creates the table if need be, applies, waits for durability. No <summary> here: Swashbuckle
    // would put it in place of the route's summary; the <param> lines describe the parameters.
    /// <param name="table">The table to import into; created from the file's schema when missing.</param>
    /// <param name="request">Its body is the file.</param>
    /// <param name="host">The node's store.</param>
    /// <param name="settings">The import size limit.</param>
    /// <param name="lifetime">A shutdown stops the import between batches.</param>
    /// <param name="format">The file format: <c>safetensors</c>, the default and only one.</param>
    /// <param name="scope"><c>node</c>: a cluster peer's part of a routed import, for this node alone; default: the whole file.</param>
    private static async Task<Results<Created<ImportReply>, Ok<ImportReply>, ProblemHttpResult>> ImportAsync(
        string table, HttpRequest request, StoreHost host, NodeSettings settings, IHostApplicationLifetime lifetime,
        string format = ExportEndpoints.SafetensorsFormat, string? scope = null)
    {
        if (ExportEndpoints.RejectFormat(format, "import") is { } badFormat) return badFormat;
        if (Scopes.Reject(scope) is { } badScope) return badScope;
        if (!TableNames.IsValid(table)) return Problems.InvalidName(table);
        if (host.Node is not { } node) return Problems.Unavailable();
        bool part = node.Cluster is not null && Scopes.ThisNodeOnly(scope);
        if (part && RejectPart(request, node) is { } badPart) return badPart;

        await using FileStream spool = node.Storage.CreateSpoolFile();   // deleted when closed, however the request ends
        var (length, error) = await RequestSpool.CopyToAsync(request, spool, settings.MaxImportBytes, request.HttpContext.RequestAborted);
        if (!error.IsNone) return Problems.From(error);
        if (!TableImport.TryCheck(spool.SafeFileHandle, out TableImport? import, out error, request.HttpContext.RequestAborted)) return Problems.From(error);

        TableSchema schema = import.Header.Schema;
        // Nothing has changed so far; the create is the first change, made only for a file that checked out whole.
        var (outcome, handle) = await node.Tables.CreateAsync(table, schema, request.HttpContext.RequestAborted);
        if (outcome == CreateTableOutcome.Conflict)
            return Problems.Of(409, ProblemCodes.TableExists,
                $"Table '{table}' exists with another schema than the file's: {SchemaDifference(handle.Schema, schema)}. Import into another table name, or delete the table first.");

        ImportPart done;
        if (node.Cluster is { Ring: { } ring } member && !part)
        {
            ImportPart[] parts = await RoutedImport.ApplyAsync(member, ring, node.Storage, handle, spool.SafeFileHandle, import.Header,
                own => ApplyAsync(node, own, handle, table, lifetime), request.HttpContext.RequestAborted);
            done = Sum(parts, table);
        }
        else
        {
            done = await ApplyAsync(node, import, handle, table, lifetime);
        }
        if (!done.Error.IsNone) return Problems.From(done.Error);

        var reply = new ImportReply
        {
            Table = table,
            Created = outcome == CreateTableOutcome.Created,
            Rows = done.Rows,
            Bytes = length,
            NonFiniteValues = done.NonFiniteValues,
            Schema = schema,
        };
        return reply.Created ? TypedResults.Created($"/v1/tables/{table}", reply) : TypedResults.Ok(reply);
    }

    /// <summary>Applies a checked file to this node's store and waits until its rows are durable.</summary>
    private static async Task<ImportPart> ApplyAsync(NodeServices node, TableImport import, TableHandle handle, string table, IHostApplicationLifetime lifetime)
    {
        ImportResult result;
        try
        {
            result = node.Storage.Import(import, handle, lifetime.ApplicationStopping);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return new ImportPart(0, 0, new ProtocolError(503, ProblemCodes.Unavailable,
                $"The node is stopping: the import into '{table}' stopped part-way, with some of its rows applied. Run it again once the node is back; an import is idempotent."));
        }
        ProtocolError error = await PushReply.AwaitDurableAsync(result.Durable);
        return new ImportPart(result.Rows, result.NonFiniteValues, error);
    }

    /// <summary>The routed import's total, or the first node's problem with a word on what the others did.</summary>
    private static ImportPart Sum(ImportPart[] parts, string table)
    {
        long rows = 0, nonFinite = 0;
        ProtocolError first = default;
        foreach (ImportPart p in parts)
        {
            rows += p.Rows;
            nonFinite += p.NonFiniteValues;
            if (first.IsNone && !p.Error.IsNone) first = p.Error;
        }
        if (first.IsNone) return new ImportPart(rows, nonFinite, default);
        return new ImportPart(rows, nonFinite, first with
        {
            Detail = $"{first.Detail} The other nodes wrote {rows} rows of the import into '{table}'; an import is idempotent, so run it again to complete it.",
        });
    }

    /// <summary>
    /// A node's part of a routed import comes from a peer (<c>ParamDb-Peer</c>, secret-checked when the cluster has
    /// one) and names the ring epoch it was cut by; a part cut by another epoch may hold keys this node does not own.
    /// </summary>
    private static ProblemHttpResult? RejectPart(HttpRequest request, NodeServices node)
    {
        if (!Peers.IsPeer(request))
            return Problems.Of(400, ProblemCodes.BadRequest, "scope=node imports are the parts a cluster node sends its peers. Import the whole file through any node, without scope.");
        ulong epoch = node.Ranges.Epoch;
        if (!ulong.TryParse(request.Headers[ParamDbHeaders.RingEpoch].ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong sent) || sent != epoch)
            return Problems.Of(421, ProblemCodes.WrongNode, $"This part of an import was cut by ring epoch '{request.Headers[ParamDbHeaders.RingEpoch]}'; this node is at epoch {epoch}. Run the import again.");
        return null;
    }

    /// <summary>Names what differs between two normalized schemas, e.g. <c>dim: the table has 4, the file 8</c>.</summary>
    internal static string SchemaDifference(TableSchema table, TableSchema file)
    {
        var parts = new List<string>(4);
        if (table.Dim != file.Dim) parts.Add($"dim: the table has {table.Dim}, the file {file.Dim}");
        if (table.MaxKey != file.MaxKey) parts.Add($"maxKey: the table has {table.MaxKey?.ToString() ?? "none"}, the file {file.MaxKey?.ToString() ?? "none"}");
        if (table.Init != file.Init)
            parts.Add($"init: the table has {JsonSerializer.Serialize(table.Init, ProtocolJson.Default.InitializerSpec)}, the file {JsonSerializer.Serialize(file.Init, ProtocolJson.Default.InitializerSpec)}");
        if (table.Updater != file.Updater)
            parts.Add($"updater: the table has {JsonSerializer.Serialize(table.Updater, ProtocolJson.Default.UpdaterSpec)}, the file {JsonSerializer.Serialize(file.Updater, ProtocolJson.Default.UpdaterSpec)}");
        if (table.AllowNonFinite != file.AllowNonFinite)
            parts.Add($"allowNonFinite: the table has {(table.AllowNonFinite ? "true" : "false")}, the file {(file.AllowNonFinite ? "true" : "false")}");
        return string.Join("; ", parts);
    }
}
