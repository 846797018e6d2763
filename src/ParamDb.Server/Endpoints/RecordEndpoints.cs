using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;
using ParamDb.Storage;
using ParamDb.Storage.Transfer;

namespace ParamDb.Server.Endpoints;

/// <summary>
/// Whole-record transfer between cluster peers (docs/replication.md): a range's records read from one node, record
/// batches written to another, a range dropped. Peers only (<c>ParamDb-Peer</c>, secret-checked when the cluster
/// has one); a client never needs them.
/// </summary>
public static class RecordEndpoints
{
    /// <summary>Maps the peer transfer routes.</summary>
    public static RouteGroupBuilder MapRecords(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/tables/{table}").WithTags("Cluster");
        group.MapGet("/ranges/{token}/records", CopyAsync)
            .WithName("CopyRange")
            .WithSummary("Cluster peers only: one range's records, values and optimizer state, as record batches, the range's vector clock in the last.")
            .WithDescription("token: the ring token the range ends at (decimal). The body is record batches one after the other "
                + "(application/x-paramdb-records, docs/replication.md); a copy cut short ends the connection without a proper end.")
            .Produces(StatusCodes.Status200OK, contentType: MediaTypes.Records)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/records", ApplyAsync)
            .WithName("ApplyRecords")
            .WithSummary("Cluster peers only: write record batches (a range copy, or replicated rows) to this node's store.")
            .WithDescription("Body: record batches one after the other (application/x-paramdb-records), up to --max-body bytes. All are "
                + "checked before any is written, then written as one write-ahead log record: a bad one is 400 bad_records naming it, "
                + "and nothing is written. The reply comes once they are durable: {\"batches\":n,\"records\":m}.")
            .Accepts<byte[]>(MediaTypes.Records)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapDelete("/ranges/{token}", DropAsync)
            .WithName("DropRange")
            .WithSummary("Cluster peers only: delete one range's rows and reset its vector clock; refused (409 range_served) for a range this node serves.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/ranges/drop", DropManyAsync)
            .WithName("DropRanges")
            .WithSummary("Cluster peers only: delete several ranges' rows and reset their vector clocks, in one pass over the log and one log record.")
            .WithDescription("Body: {\"tokens\":[\"123\",…]}, the ring tokens that end the ranges (decimal strings), at most "
                + "MaxDropTokens. Refused whole (409 range_served) if this node serves any of them; {\"rows\":n} once the drop is durable. "
                + "A primary sends it to a returning node before it sends it those ranges whole, so the node keeps no row the primary lacks.")
            .Accepts<RangeDropRequest>(MediaTypes.Json)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        return group;
    }

    /// <summary>Most ranges one <c>POST …/ranges/drop</c> names: every range of 1,024 nodes of 64 tokens.</summary>
    public const int MaxDropTokens = 1 << 16;

    /// <summary>The node's transfer seam and the table, or the problem that stops a peer's transfer request.</summary>
    private static bool TryOpen(HttpRequest request, StoreHost host, string table, out IRangeTransfer transfer, out TableHandle handle, out ProblemHttpResult? problem)
    {
        transfer = null!;
        handle = null!;
        problem = null;
        if (!Peers.IsPeer(request))
            problem = Problems.Of(400, ProblemCodes.BadRequest, "Range transfers are between cluster peers; a client never sends them.");
        else if (host.Node is not { Transfer: { } t } node)
            problem = host.Node is null ? Problems.Unavailable() : Problems.Of(404, ProblemCodes.NotInCluster, "This node is not a cluster member: it has no ranges to transfer.");
        else if (!node.TryResolve(table, out TableHandle? found, out ProtocolError error))
            problem = Problems.From(error);
        else
        {
            transfer = t;
            handle = found;
        }
        return problem is null;
    }

    private static bool TryToken(string token, out ulong value, out ProblemHttpResult? problem)
    {
        problem = ulong.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out value)
            ? null
            : Problems.Of(400, ProblemCodes.BadRequest, $"'{token}' is not a ring token (a decimal uint64).");
        return problem is null;
    }

    private static ProblemHttpResult RangeNotFound(ulong token) =>
        Problems.Of(404, ProblemCodes.RangeNotFound, $"Ring token {token} ends none of this node's ranges.");

    private static async Task<IResult> CopyAsync(string table, string token, HttpContext context, StoreHost host)
    {
        if (!TryOpen(context.Request, host, table, out var transfer, out var handle, out var problem)) return problem!;
        if (!TryToken(token, out ulong at, out problem)) return problem!;
        RangeCopy copy;
        try
        {
            copy = transfer.CopyRange(handle, at);
        }
        catch (ArgumentException)
        {
            return RangeNotFound(at);
        }
        using (copy)
        {
            context.Response.ContentType = MediaTypes.Records;
            // Once the first byte is out the status is sent: a failure later ends the connection (the reader sees a
            // body cut short), never a well-formed copy that lacks records.
            while (copy.TryReadNext(out ReadOnlyMemory<byte> batch))
                await context.Response.Body.WriteAsync(batch, context.RequestAborted);
        }
        return Results.Empty;
    }

    private static async Task<Results<Ok<RecordsApplied>, ProblemHttpResult>> ApplyAsync(string table, HttpRequest request, StoreHost host, NodeSettings settings)
    {
        if (!TryOpen(request, host, table, out var transfer, out var handle, out var problem)) return problem!;
        await Failpoints.HitAsync(Failpoints.ReplicationReceive);
        // One pooled buffer of the declared length: a 4 MiB replication batch grown in a MemoryStream cost ~8 MiB of
        // large-object garbage per request, and the collections that followed took a fifth of a backup's CPU.
        var (body, readError) = await RequestBody.ReadAsync(request, settings.MaxBodyBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        using PooledBuffer owned = body;
        ReadOnlyMemory<byte> batches = body.Memory;
        var slices = new List<Range>();
        if (!RecordBatch.TrySplit(batches.Span, slices, out long records, out string error))
            return Problems.Of(400, ProblemCodes.BadRecords, $"{error} Nothing was written.");
        ClusterRing? ring = host.Node?.Cluster?.Ring;
        int self = ring?.NodeIndex(host.Node!.Cluster!.Identity.NodeId) ?? -1;
        foreach (Range slice in slices)
        {
            // Only a range's primary writes it; records from elsewhere would overwrite rows it acknowledged. The
            // ring is asked as well as the store: a node whose ring just made it the primary takes pushes for the
            // arc before its store has switched the arc to served.
            ulong token = RecordBatch.TokenOf(batches.Span[slice]);
            if (transfer.Serves(token) || (ring is not null && ring.Tokens.BinarySearch(token) is var i && i >= 0 && ring.Primaries[i] == self))
                return Problems.Of(409, ProblemCodes.RangeServed, $"This node serves range {token} (it is the range's primary), so it takes no records for it from elsewhere. Nothing was written.");
        }
        Task durable;
        try
        {
            // One log record and one push-gate section for all of them: all are written, or none.
            durable = transfer.ApplyRecords(handle, batches.Span);
        }
        catch (ArgumentException e)
        {
            return Problems.Of(400, ProblemCodes.BadRecords, $"{e.Message} Nothing was written.");
        }
        await durable;
        Failpoints.Hit(Failpoints.RecordsAfterLog);
        return TypedResults.Ok(new RecordsApplied(slices.Count, records));
    }

    private static async Task<Results<Ok<RangeDropped>, ProblemHttpResult>> DropAsync(string table, string token, HttpRequest request, StoreHost host)
    {
        if (!TryOpen(request, host, table, out var transfer, out var handle, out var problem)) return problem!;
        if (!TryToken(token, out ulong at, out problem)) return problem!;
        if (transfer.Serves(at))
            return Problems.Of(409, ProblemCodes.RangeServed, $"This node serves range {at} (it is the range's primary); dropping it would lose acknowledged rows.");
        try
        {
            var (rows, durable) = transfer.DropRange(handle, at);
            await durable;
            return TypedResults.Ok(new RangeDropped(rows));
        }
        catch (ArgumentException)
        {
            return RangeNotFound(at);
        }
    }

    private static async Task<Results<Ok<RangeDropped>, ProblemHttpResult>> DropManyAsync(string table, HttpRequest request, StoreHost host)
    {
        if (!TryOpen(request, host, table, out var transfer, out var handle, out var problem)) return problem!;
        var (body, readError) = await RequestBody.ReadAsync(request, MaxDropTokens * 24L + 64, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        RangeDropRequest? drop;
        using (body)
        {
            try
            {
                drop = System.Text.Json.JsonSerializer.Deserialize(body.Span, ProtocolJson.Default.RangeDropRequest);
            }
            catch (System.Text.Json.JsonException e)
            {
                return Problems.Of(400, ProblemCodes.BadRequest, $"The drop does not parse: {e.Message} Nothing was dropped.");
            }
        }
        if (drop?.Tokens is not { Count: > 0 and <= MaxDropTokens } listed)
            return Problems.Of(400, ProblemCodes.BadRequest, $"Send {{\"tokens\":[\"123\",…]}} with 1 to {MaxDropTokens} ring tokens. Nothing was dropped.");
        var tokens = new ulong[listed.Count];
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!TryToken(listed[i] ?? "", out tokens[i], out problem)) return problem!;
            if (transfer.Serves(tokens[i]))
                return Problems.Of(409, ProblemCodes.RangeServed, $"This node serves range {tokens[i]} (it is the range's primary); dropping it would lose acknowledged rows. Nothing was dropped.");
        }
        try
        {
            var (rows, durable) = transfer.DropRanges(handle, tokens);
            await durable;
            return TypedResults.Ok(new RangeDropped(rows));
        }
        catch (ArgumentException e)
        {
            return Problems.Of(404, ProblemCodes.RangeNotFound, $"{e.Message} Nothing was dropped.");
        }
    }
}
