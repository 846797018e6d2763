using System.Net.Mime;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Cluster.Files;
using ParamDb.Protocol;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;

namespace ParamDb.Server.Endpoints;

/// <summary>Table export (docs/durability.md, docs/export.md): <c>GET /v1/tables/{table}/export</c>, a live table as a safetensors file.</summary>
public static class ExportEndpoints
{
    /// <summary>The only export format, and the default.</summary>
    public const string SafetensorsFormat = "safetensors";

    /// <summary>Maps the export route.</summary>
    public static RouteGroupBuilder MapExport(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/tables/{table}").WithTags("Export");
        group.MapGet("/export", ExportAsync)
            .WithName("ExportTable")
            .WithSummary("Download a table as a safetensors file: keys ascending, then their rows. A live export, not a point-in-time view: "
                + "rows pushed during it may or may not be reflected, and rows created after its key scan are absent.")
            .WithDescription("format=safetensors is the default and only format. The file holds `keys` (U64 [n], strictly ascending) and "
                + "`values` (F32 [n, dim], row i belongs to keys[i]) and the table's schema in its metadata (docs/export.md). The server "
                + "scans and sorts the keys first (in bounded memory, on disk under DATA/tmp for large tables), so the reply starts "
                + "after that with an exact Content-Length, then streams in constant memory. On a cluster the node asked merges every "
                + "node's sorted export into the one file; scope=node exports this node's rows alone.")
            .Produces<byte[]>(StatusCodes.Status200OK, MediaTypeNames.Application.Octet)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return group;
    }

    /// <summary>400 <c>bad_request</c> for any format but safetensors (case-insensitive), else null.</summary>
    /// <param name="format">The <c>format</c> query parameter.</param>
    /// <param name="what">"export" or "import", for the detail.</param>
    internal static ProblemHttpResult? RejectFormat(string format, string what) =>
        format.Equals(SafetensorsFormat, StringComparison.OrdinalIgnoreCase)
            ? null
            : Problems.Of(400, ProblemCodes.BadRequest, $"'{format}' is not an {what} format: the only one is '{SafetensorsFormat}', the default.");

    // Scans and sorts the table's keys, then hands the reply the prepared export to stream. No <summary> here:
    // Swashbuckle would put it in place of the route's summary; the <param> lines describe the query parameter.
    /// <param name="table">The table to export.</param>
    /// <param name="format">The file format: <c>safetensors</c>, the default and only one.</param>
    /// <param name="host">The node's store.</param>
    /// <param name="settings">The export's run size.</param>
    /// <param name="context">Its RequestAborted stops the scan and sort.</param>
    /// <param name="scope"><c>node</c>: this node's rows only; default: the whole table, every node's rows on a cluster.</param>
    private static async Task<Results<SafetensorsReply, ProblemHttpResult>> ExportAsync(
        string table, StoreHost host, NodeSettings settings, HttpContext context, string format = SafetensorsFormat, string? scope = null)
    {
        if (RejectFormat(format, "export") is { } badFormat) return badFormat;
        if (Scopes.Reject(scope) is { } badScope) return badScope;
        var (node, handle, problem) = await DataEndpoints.OpenAsync(host, table, context.RequestAborted);
        if (problem is not null) return problem;
        // The scan and sort run here, before the reply starts: a failure is still a problem reply, not a cut download.
        if (node!.Cluster is not { } member || Scopes.ThisNodeOnly(scope))
            return new SafetensorsReply(node.Storage.PrepareExport(handle!, settings.ExportRunKeys, context.RequestAborted), $"{handle!.Name}.safetensors");
        var (merged, error) = await MergedExport.PrepareAsync(member, node.Storage, handle!, settings.ExportRunKeys, context.RequestAborted);
        return merged is null ? Problems.From(error) : new SafetensorsReply(merged, $"{handle!.Name}.safetensors");
    }
}
