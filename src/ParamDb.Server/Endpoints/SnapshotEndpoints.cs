using System.Net.Mime;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;
using ParamDb.Storage;
using ParamDb.Storage.Snapshots;

namespace ParamDb.Server.Endpoints;

/// <summary>
/// Named snapshots (docs/durability.md, docs/snapshots.md): create, list, get, delete, restore, and export a table of
/// one as a safetensors file.
/// </summary>
public static class SnapshotEndpoints
{
    /// <summary>Largest create body: a name.</summary>
    private const long MaxRequestBytes = 4 * 1024;

    /// <summary>Maps the snapshot routes.</summary>
    public static RouteGroupBuilder MapSnapshots(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/snapshots").WithTags("Snapshots").SingleNodeOnlyUntil("Snapshots (create, restore, export)");
        group.MapPost("/", CreateAsync)
            .WithName("CreateSnapshot")
            .WithSummary("Take a named snapshot of every table, with its rows, vector clocks and the registered workers, as of one cut. "
                + "Pushes keep flowing while it is taken; the reply comes once the snapshot is whole on disk (fsynced).")
            .WithDescription("Names are 1 to 128 of A-Z a-z 0-9 _ . - and do not start with a dot; a name is never reused (409). "
                + "With --snapshots-to-keep N, the oldest snapshots beyond N are deleted after this one is taken.")
            .Accepts<SnapshotRequest>(MediaTypes.Json);
        group.MapGet("/", List).WithName("ListSnapshots").WithSummary("Every snapshot, newest first.").WithMetadata(new OutsideStoreGate());
        group.MapGet("/{name}", Get).WithName("GetSnapshot").WithSummary("A snapshot: when it was taken, its tables with their rows, bytes on disk.").WithMetadata(new OutsideStoreGate());
        group.MapDelete("/{name}", Delete).WithName("DeleteSnapshot")
            .WithSummary("Delete a snapshot. It leaves the list at once; an export reading it finishes first, then its files go.")
            .WithMetadata(new OutsideStoreGate());
        group.MapPost("/{name}/restore", RestoreAsync).WithName("RestoreSnapshot")
            .WithSummary("Replace the node's whole state (tables, rows, clocks, workers) with the snapshot's. Writes made after the snapshot are gone.")
            .WithDescription("The snapshot is copied while the node serves; then new requests wait, running ones finish (open streams end "
                + "with a 503 frame, waiting pulls answer 503), and the node reopens on the copy. The reply says how long requests were held. "
                + "Workers registered after the snapshot must register again. A damaged snapshot is refused (409) before anything changes.")
            .WithMetadata(new OutsideStoreGate());
        group.MapGet("/{name}/tables/{table}/export", Export).WithName("ExportSnapshotTable")
            .WithSummary("Download a table of a snapshot as a safetensors file: keys ascending, then their rows, as of the snapshot.")
            .WithDescription("The same file as GET /v1/tables/{table}/export (docs/export.md), from the snapshot instead of the live table: a "
                + "point-in-time view. format=safetensors is the default and only format.")
            .Produces<byte[]>(StatusCodes.Status200OK, MediaTypeNames.Application.Octet)
            .WithMetadata(new OutsideStoreGate());
        return group;
    }

    private static async Task<Results<Created<SnapshotInfo>, ProblemHttpResult>> CreateAsync(HttpRequest request, StoreHost host)
    {
        if (host.Node is null || host.Snapshots is null) return Problems.Unavailable();
        if (!Negotiation.TryRequestFormat(request, out var format, out _) || format != BodyFormat.Json)
            return Problems.Of(415, ProblemCodes.UnsupportedMediaType, $"Send the snapshot's name as JSON, {{\"name\": \"...\"}}, with Content-Type: {MediaTypes.Json}.");
        var (body, readError) = await RequestBody.ReadAsync(request, MaxRequestBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        SnapshotRequest? create;
        using (body)
        {
            try
            {
                create = JsonSerializer.Deserialize(body.Span, ProtocolJson.Default.SnapshotRequest);
            }
            catch (JsonException e)
            {
                return Problems.Of(400, ProblemCodes.BadRequest, $"The body does not parse: {e.Message} Send {{\"name\": \"...\"}}.");
            }
        }
        if (create?.Name is not { } name) return Problems.Of(400, ProblemCodes.InvalidSnapshotName, "The body names no snapshot: send {\"name\": \"...\"}.");
        try
        {
            SnapshotInfo info = await host.CreateSnapshotAsync(name, request.HttpContext.RequestAborted);
            return TypedResults.Created($"/v1/snapshots/{info.Name}", info);
        }
        catch (SnapshotException e)
        {
            return Problem(e);
        }
    }

    private static Results<Ok<SnapshotList>, ProblemHttpResult> List(StoreHost host) =>
        host.Snapshots is { } snapshots ? TypedResults.Ok(new SnapshotList { Snapshots = snapshots.List() }) : Problems.Unavailable();

    private static Results<Ok<SnapshotInfo>, ProblemHttpResult> Get(string name, StoreHost host)
    {
        if (host.Snapshots is not { } snapshots) return Problems.Unavailable();
        try
        {
            return TypedResults.Ok(snapshots.Get(name));
        }
        catch (SnapshotException e)
        {
            return Problem(e);
        }
    }

    private static Results<NoContent, ProblemHttpResult> Delete(string name, StoreHost host)
    {
        if (host.Snapshots is not { } snapshots) return Problems.Unavailable();
        try
        {
            return snapshots.Delete(name) ? TypedResults.NoContent() : Problem(SnapshotException.NotFound(name));
        }
        catch (SnapshotException e)
        {
            return Problem(e);
        }
    }

    private static async Task<Results<Ok<RestoreReply>, ProblemHttpResult>> RestoreAsync(string name, StoreHost host, HttpContext context)
    {
        if (host.Snapshots is null) return Problems.Unavailable();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            // Not the request's token: once the swap starts it must finish, whether or not the client waits for it.
            var (info, paused) = await host.RestoreAsync(name, CancellationToken.None);
            return TypedResults.Ok(new RestoreReply { Snapshot = info, DurationMs = clock.Elapsed.TotalMilliseconds, PausedMs = paused.TotalMilliseconds });
        }
        catch (SnapshotException e)
        {
            return Problem(e);
        }
        catch (InvalidDataException e)
        {
            return Problems.Of(409, ProblemCodes.SnapshotDamaged, $"{e.Message} The node kept its data.");
        }
        catch (InvalidOperationException e)
        {
            return Problems.Of(409, ProblemCodes.RestoreInProgress, e.Message);
        }
    }

    /// <param name="name">The snapshot.</param>
    /// <param name="table">The table to export.</param>
    /// <param name="format">The file format: <c>safetensors</c>, the default and only one.</param>
    /// <param name="host">The node's snapshots.</param>
    /// <param name="settings">The export's run size.</param>
    /// <param name="context">Its RequestAborted stops the scan and sort; the reply disposes the reader.</param>
    private static Results<SafetensorsReply, ProblemHttpResult> Export(string name, string table, StoreHost host, NodeSettings settings, HttpContext context,
        string format = ExportEndpoints.SafetensorsFormat)
    {
        if (ExportEndpoints.RejectFormat(format, "export") is { } badFormat) return badFormat;
        if (!TableNames.IsValid(table)) return Problems.InvalidName(table);
        if (host.Snapshots is not { } snapshots) return Problems.Unavailable();
        SnapshotReader reader;
        try
        {
            reader = snapshots.OpenReader(name);
        }
        catch (SnapshotException e)
        {
            return Problem(e);
        }
        catch (InvalidDataException e)
        {
            return Problems.Of(409, ProblemCodes.SnapshotDamaged, e.Message);
        }
        try
        {
            if (!reader.TryGetTable(table, out TableHandle? handle))
            {
                reader.Dispose();
                return Problems.Of(404, ProblemCodes.TableNotFound, $"Snapshot '{name}' has no table '{table}'; GET /v1/snapshots/{name} lists its tables.");
            }
            var export = reader.PrepareExport(handle, settings.ExportRunKeys, context.RequestAborted);
            context.Response.RegisterForDispose(reader);
            return new SafetensorsReply(export, $"{handle.Name}.safetensors");
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    private static ProblemHttpResult Problem(SnapshotException e) => e.Error switch
    {
        SnapshotError.InvalidName => Problems.Of(400, ProblemCodes.InvalidSnapshotName, e.Message),
        SnapshotError.Exists => Problems.Of(409, ProblemCodes.SnapshotExists, e.Message),
        _ => Problems.Of(404, ProblemCodes.SnapshotNotFound, e.Message),
    };
}
