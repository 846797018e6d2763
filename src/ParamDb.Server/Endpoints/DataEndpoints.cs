using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
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
        group.MapGet("/rows/{key}", GetRow)
            .WithName("GetRow")
            .WithSummary("Read one row as JSON.");
        return group;
    }

    private static async Task<Results<Ok<PushResult>, ProblemHttpResult>> PushAsync(string table, HttpRequest request, StoreHost host, NodeSettings settings)
    {
        if (!DataOps.TryResolve(host, table, out var store, out var handle, out var error)) return Problems.From(error);
        if (!ClockHeaders.TryRead(request, out var clock, out error)) return Problems.From(error);
        if (!DataOps.TryCheckStamp(clock.Worker, clock.Clock, out error)) return Problems.From(error);
        if (!Negotiation.TryRequestFormat(request, out var format, out error)) return Problems.From(error);
        var (body, readError) = await RequestBody.ReadAsync(request, settings.MaxBodyBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        PushResult result;
        Task durable;
        using (body)
        {
            await store.WhenPushGateOpenAsync(request.HttpContext.RequestAborted);
            if (!ApplyPush(store, handle, body, format, clock.Stamp, settings.MaxKeys, out result, out durable, out error)) return Problems.From(error);
        }
        error = await DataOps.AwaitDurableAsync(durable);
        return error.IsNone ? TypedResults.Ok(result) : Problems.From(error);
    }

    private static bool ApplyPush(ParamStore store, TableHandle table, PooledBuffer body, BodyFormat format, WorkerStamp stamp, int maxKeys, out PushResult result, out Task durable, out ProtocolError error)
    {
        if (format == BodyFormat.Kv) return DataOps.TryPush(store, table, body.Span, stamp, maxKeys, out result, out durable, out error);
        result = null!;
        durable = Task.CompletedTask;
        if (!JsonRows.TryParse(body.Span, push: true, maxKeys, out var json, out error)) return false;
        using (json)
        {
            // An empty JSON push has no rows to give a width: it is a tick.
            if (json.Count > 0 && !RowRules.Check(table, json.Dim, isPull: false, json.Count, json.LastKey, out error)) return false;
            // A number beyond float32's range has already become ±Infinity in the parse: caught here as well.
            if (!RowRules.CheckFinite(table, json.Values, json.IsRange, json.First, json.Keys, fromJson: true, out error)) return false;
            return DataOps.TryPushRows(store, table, json.IsRange, json.First, json.Keys, json.Count, json.Values, stamp, out result, out durable, out error);
        }
    }

    private static async Task<IResult> PullAsync(string table, HttpRequest request, StoreHost host, NodeSettings settings)
    {
        if (!DataOps.TryResolve(host, table, out var store, out var handle, out var error)) return Problems.From(error);
        if (!ClockHeaders.TryRead(request, out var clock, out error)) return Problems.From(error);
        if (!DataOps.TryTouchWorker(store, clock.Worker, out error)) return Problems.From(error);
        if (!Negotiation.TryRequestFormat(request, out var format, out error)) return Problems.From(error);
        if (!Negotiation.TryReplyFormat(request, format, out var replyFormat, out error)) return Problems.From(error);
        var (body, readError) = await RequestBody.ReadAsync(request, settings.MaxBodyBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        using (body)
        {
            // Validate everything before waiting: a bad pull fails at once, not after its clocks arrive.
            KvBlock plan = default;
            JsonRows? json = null;
            if (format == BodyFormat.Kv)
            {
                if (!DataOps.TryPlanPull(handle, body.Span, settings.MaxKeys, settings.MaxBodyBytes, out plan, out error)) return Problems.From(error);
            }
            else
            {
                if (!JsonRows.TryParse(body.Span, push: false, settings.MaxKeys, out json, out error)) return Problems.From(error);
                if (!RowRules.Check(handle, 0, isPull: true, json.Count, json.LastKey, out error)
                    || !RowRules.CheckReplySize(handle, json.IsRange, json.Count, settings.MaxBodyBytes, out _, out error))
                {
                    json.Dispose();
                    return Problems.From(error);
                }
            }
            using (json)
            {
                var wait = await DataOps.WaitAsync(store, handle, clock.Consistency, clock.Clock, clock.Timeout, request.HttpContext.RequestAborted);
                if (!wait.Error.IsNone) return Problems.From(wait.Error, wait.Behind, wait.Target);
                string clockMin = wait.ClockMin.ToString(System.Globalization.CultureInfo.InvariantCulture);
                bool lz4 = Negotiation.AcceptsLz4(request);
                if (format == BodyFormat.Kv && replyFormat == BodyFormat.Kv)
                    return new BufferReply(DataOps.PullKv(store, handle, body.Span, plan, headroom: 0), MediaTypes.KvBlock, lz4, clockMin);
                PooledBuffer reply = json is not null
                    ? Reply(store, handle, replyFormat, json.IsRange, json.First, json.Keys, json.Count)
                    : Reply(store, handle, replyFormat, plan.IsRange, plan.First, plan.IsRange ? default : plan.Keys(body.Span), plan.Count);
                return new BufferReply(reply, replyFormat == BodyFormat.Kv ? MediaTypes.KvBlock : MediaTypes.Json, lz4, clockMin);
            }
        }
    }

    /// <summary>Builds the reply, pulling straight into its values section (binary) or a pooled scratch array (JSON).</summary>
    private static PooledBuffer Reply(ParamStore store, TableHandle table, BodyFormat replyFormat, bool range, ulong first, ReadOnlySpan<ulong> keys, int count)
    {
        int dim = table.Dim;
        if (replyFormat == BodyFormat.Kv)
        {
            int size = checked((int)KvBlockWriter.SizeOf(range, count, dim, values: true));   // checked against the limit before
            var reply = new PooledBuffer(size) { Length = size };
            var span = reply.Span;
            int valuesOffset = KvBlockWriter.WriteForValues(span, range, first, keys, count, dim);
            var values = MemoryMarshal.Cast<byte, float>(span[valuesOffset..]);
            if (range) store.PullRange(table, first, count, values);
            else store.Pull(table, keys, values);
            return reply;
        }
        var scratch = new PooledBuffer(checked(count * dim * 4));
        try
        {
            var values = MemoryMarshal.Cast<byte, float>(scratch.Array.AsSpan(0, count * dim * 4));
            if (range) store.PullRange(table, first, count, values);
            else store.Pull(table, keys, values);
            // ~12 bytes of JSON per float is a fair first guess; the writer grows the buffer when short.
            var json = new PooledBuffer((int)Math.Min(int.MaxValue / 2, 64L + 12L * count * dim + 24L * count));
            JsonRows.WriteReply(new PooledBufferWriter(json), range, first, keys, count, values, dim);
            return json;
        }
        finally
        {
            scratch.Dispose();
        }
    }

    private static Results<Ok<RowReply>, ProblemHttpResult> GetRow(string table, string key, StoreHost host)
    {
        if (!TryOpen(host, table, out var store, out var handle, out var problem)) return problem;
        if (!ulong.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong k))
            return Problems.Of(400, ProblemCodes.KeyOutOfRange, $"'{key}' is not a key: keys are integers 0 … 2^64-1.");
        if (!RowRules.Check(handle, handle.Dim, isPull: true, 1, k, out var error)) return Problems.From(error);
        var values = new float[handle.Dim];
        store.Pull(handle, [k], values);
        return TypedResults.Ok(new RowReply(k, values));
    }

    /// <summary>Resolves the store and the table, or the problem that stops the request.</summary>
    internal static bool TryOpen(StoreHost host, string table, out ParamStore store, out TableHandle handle, out ProblemHttpResult problem)
    {
        bool ok = DataOps.TryResolve(host, table, out store, out handle, out var error);
        problem = ok ? null! : Problems.From(error);
        return ok;
    }
}
