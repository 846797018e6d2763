using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using System.Diagnostics.CodeAnalysis;
using ParamDb.Server.Data;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;
using ParamDb.Storage;

namespace ParamDb.Server.Endpoints;

/// <summary>Push, pull and single-row reads (docs/wire-format.md): <c>/v1/tables/{table}/push|pull|rows/{key}</c>.</summary>
public static class DataEndpoints
{
    /// <summary>Maps the data routes.</summary>
    public static RouteGroupBuilder MapData(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/tables/{table}").WithTags("Data");
        group.MapPost("/push", PushAsync)
            .WithName("Push")
            .WithSummary("Push rows; the table's updater folds them in.")
            .WithDescription("Body: a KV block with VALUES (application/x-paramdb-kv) or JSON {\"keys\":[…],\"values\":[[…],…]} / {\"first\":0,\"values\":[…]}. Keys strictly ascending. Content-Encoding: lz4 accepted.")
            .Accepts<KvJson>(MediaTypes.Json, MediaTypes.KvBlock);
        group.MapPost("/pull", PullAsync)
            .WithName("Pull")
            .WithSummary("Pull rows; rows never pushed read as the table's initial value.")
            .WithDescription("Body: a KV block without VALUES, or JSON {\"keys\":[…]} / {\"first\":0,\"count\":100}. The reply has the same key layout, in the format Accept names (default: the request's). Accept-Encoding: lz4 compresses it.")
            .Accepts<KvJson>(MediaTypes.Json, MediaTypes.KvBlock)
            .Produces<KvJson>(200, MediaTypes.Json, MediaTypes.KvBlock)
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(406).ProducesProblem(413).ProducesProblem(415);
        group.MapGet("/rows/{key}", GetRowAsync)
            .WithName("GetRow")
            .WithSummary("Read one row as JSON.");
        return group;
    }

    private static async Task<Results<Ok<PushResult>, ProblemHttpResult>> PushAsync(string table, HttpRequest request, StoreHost host, NodeSettings settings)
    {
        var open = await OpenAsync(host, table, request.HttpContext.RequestAborted);
        if (open.Problem is not null) return open.Problem;
        NodeServices node = open.Node!;
        TableHandle handle = open.Table!;
        if (!ClockHeaders.TryRead(request, out var clock, out var error)) return Problems.From(error);
        if (clock.Clock != 0 && clock.Worker == 0) return Problems.From(DataErrors.ClockWithoutWorker(clock.Clock));
        if (!Negotiation.TryRequestFormat(request, out var format, out error)) return Problems.From(error);
        CancellationToken aborted = request.HttpContext.RequestAborted;
        var (body, readError) = await RequestBody.ReadAsync(request, settings.MaxBodyBytes, aborted);
        if (body is null) return Problems.From(readError);
        PushReply reply;
        using (body)
        {
            if (format == BodyFormat.Kv) reply = await node.Data.PushAsync(handle, body.Memory, clock.Push(fromJson: false), aborted);
            else
            {
                if (!JsonRows.TryParse(body.Span, push: true, settings.MaxKeys, out var json, out error)) return Problems.From(error);
                using (json)
                {
                    // An empty JSON push has no rows to give a width: it is a tick.
                    if (json.Count == 0) reply = await node.Data.TickAsync(handle, clock.Push(fromJson: true), aborted);
                    else
                    {
                        using PooledBuffer block = json.ToBlock();
                        reply = await node.Data.PushAsync(handle, block.Memory, clock.Push(fromJson: true), aborted);
                    }
                }
            }
        }
        if (!reply.Accepted) return Refused(request, node, reply.Error);
        error = await PushReply.AwaitDurableAsync(reply.Durable);
        return error.IsNone ? TypedResults.Ok(reply.Result!) : Problems.From(error);
    }

    private static async Task<IResult> PullAsync(string table, HttpRequest request, StoreHost host, NodeSettings settings)
    {
        var open = await OpenAsync(host, table, request.HttpContext.RequestAborted);
        if (open.Problem is not null) return open.Problem;
        NodeServices node = open.Node!;
        TableHandle handle = open.Table!;
        if (!ClockHeaders.TryRead(request, out var clock, out var error)) return Problems.From(error);
        if (!Negotiation.TryRequestFormat(request, out var format, out error)) return Problems.From(error);
        if (!Negotiation.TryReplyFormat(request, format, out var replyFormat, out error)) return Problems.From(error);
        CancellationToken aborted = request.HttpContext.RequestAborted;
        var (body, readError) = await RequestBody.ReadAsync(request, settings.MaxBodyBytes, aborted);
        if (body is null) return Problems.From(readError);
        PooledBuffer block = body;
        try
        {
            if (format == BodyFormat.Json)
            {
                if (!JsonRows.TryParse(body.Span, push: false, settings.MaxKeys, out var json, out error)) return Problems.From(error);
                using (json) block = json.ToBlock();
            }
            // Checked before waiting: a bad pull fails at once, not after its clocks arrive.
            PullOptions options = clock.Pull;
            if (!node.Data.TryPlanPull(handle, block.Span, options, out KvBlock plan, out error)) return Refused(request, node, error);
            var wait = await node.Data.WaitAsync(handle, block.Memory, plan, options, aborted);
            if (!wait.Error.IsNone) return Problems.From(wait.Error, wait.Behind, wait.Target);
            var (reply, read) = await DataReplies.PullKvAsync(node.Data, handle, block.Memory, plan, options, headroom: 0, aborted);
            if (!read.Error.IsNone)
            {
                reply.Dispose();
                return Problems.From(read.Error, read.Behind, read.Target);
            }
            string clockMin = Math.Min(wait.ClockMin, read.ClockMin).ToString(System.Globalization.CultureInfo.InvariantCulture);
            bool lz4 = Negotiation.AcceptsLz4(request);
            if (replyFormat == BodyFormat.Kv) return new BufferReply(reply, MediaTypes.KvBlock, lz4, clockMin);
            using (reply) return new BufferReply(JsonReply(reply.Span, plan, handle.Dim), MediaTypes.Json, lz4, clockMin);
        }
        finally
        {
            if (block != body) block.Dispose();
            body.Dispose();
        }
    }

    /// <summary>A pull's KV reply block as JSON with the request's key layout.</summary>
    private static PooledBuffer JsonReply(ReadOnlySpan<byte> kvReply, in KvBlock plan, int dim)
    {
        KvBlock.TryParse(kvReply, KvExpect.Values, int.MaxValue, out KvBlock rows, out _);   // written just now: always valid
        // ~12 bytes of JSON per float is a fair first guess; the writer grows the buffer when short.
        var json = new PooledBuffer((int)Math.Min(int.MaxValue / 2, 64L + 12L * plan.Count * dim + 24L * plan.Count));
        JsonRows.WriteReply(new PooledBufferWriter(json), rows.IsRange, rows.First, rows.IsRange ? default : rows.Keys(kvReply), rows.Count, rows.Values(kvReply), dim);
        return json;
    }

    private static async Task<Results<Ok<RowReply>, ProblemHttpResult>> GetRowAsync(string table, string key, StoreHost host, CancellationToken ct)
    {
        var open = await OpenAsync(host, table, ct);
        if (open.Problem is not null) return open.Problem;
        NodeServices node = open.Node!;
        TableHandle handle = open.Table!;
        if (!ulong.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong k))
            return Problems.Of(400, ProblemCodes.KeyOutOfRange, $"'{key}' is not a key: keys are integers 0 … 2^64-1.");
        byte[] request = new byte[KvBlockWriter.SizeOf(range: false, 1, handle.Dim, values: false)];
        KvBlockWriter.Write(request, [k], default, handle.Dim, withValues: false);
        if (!node.Data.TryPlanPull(handle, request, PullOptions.Eventual, out KvBlock plan, out var error)) return Problems.From(error);
        byte[] row = new byte[handle.Dim * sizeof(float)];
        ClockWait read = await node.Data.ReadAsync(handle, request, plan, PullOptions.Eventual, row, ct);
        if (!read.Error.IsNone) return Problems.From(read.Error);
        return TypedResults.Ok(new RowReply(k, MemoryMarshal.Cast<byte, float>(row).ToArray()));
    }

    /// <summary>A refused request's problem; a 421 carries the node's ring epoch (<c>ParamDb-Ring-Epoch</c>) so the client knows it must refetch the ring.</summary>
    private static ProblemHttpResult Refused(HttpRequest request, NodeServices node, ProtocolError error)
    {
        if (error.Status == StatusCodes.Status421MisdirectedRequest)
            request.HttpContext.Response.Headers[ParamDbHeaders.RingEpoch] = node.Ranges.Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Problems.From(error);
    }

    /// <summary>
    /// Resolves the node's seams and the table, or the problem that stops the request; a cluster member that does
    /// not know the table catches up with the server manager first (<see cref="NodeServices.ResolveAsync"/>).
    /// </summary>
    internal static async ValueTask<(NodeServices? Node, TableHandle? Table, ProblemHttpResult? Problem)> OpenAsync(StoreHost host, string table, CancellationToken cancellationToken)
    {
        if (TryOpen(host, table, out var node, out var handle, out var problem)) return (node, handle, null);
        if (node is null || node.Cluster is null || !TableNames.IsValid(table)) return (null, null, problem);
        var (found, error) = await node.ResolveAsync(table, cancellationToken);
        return found is null ? (null, null, Problems.From(error)) : (node, found, null);
    }

    /// <summary>Resolves the node's seams and the table, or the problem that stops the request.</summary>
    internal static bool TryOpen(StoreHost host, string table, [NotNullWhen(true)] out NodeServices? node, [NotNullWhen(true)] out TableHandle? handle, out ProblemHttpResult problem)
    {
        handle = null;
        problem = null!;
        node = host.Node;
        if (!TableNames.IsValid(table)) problem = Problems.InvalidName(table);
        else if (node is null) problem = Problems.Unavailable();
        else if (!node.TryResolve(table, out handle, out var error)) problem = Problems.From(error);
        return problem is null;
    }
}
