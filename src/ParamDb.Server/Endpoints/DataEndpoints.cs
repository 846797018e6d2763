using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;
using ParamDb.Storage;

namespace ParamDb.Server.Endpoints;

/// <summary>Push, pull and single-row reads (DESIGN.md §5): <c>/v1/tables/{table}/push|pull|rows/{key}</c>.</summary>
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
        if (!TryOpen(host, table, out var store, out var handle, out var problem)) return problem;
        if (!Negotiation.TryRequestFormat(request, out var format, out var error)) return Problems.From(error);
        var (body, readError) = await RequestBody.ReadAsync(request, settings.MaxBodyBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        using (body)
        {
            return ApplyPush(store, handle, body, format, settings.MaxKeys, out long rows, out error)
                ? TypedResults.Ok(new PushResult(rows, rows))
                : Problems.From(error);
        }
    }

    private static bool ApplyPush(ParamStore store, TableHandle table, PooledBuffer body, BodyFormat format, int maxKeys, out long rows, out ProtocolError error)
    {
        rows = 0;
        if (format == BodyFormat.Kv)
        {
            ReadOnlySpan<byte> bytes = body.Span;
            if (!KvBlock.TryParse(bytes, KvExpect.Values, maxKeys, out var block, out error)) return false;
            if (!RowRules.Check(table, block.Dim, isPull: false, block.Count, block.LastKey(bytes), out error)) return false;
            if (block.IsRange) store.PushRange(table, block.First, block.Count, block.Values(bytes));
            else store.Push(table, block.Keys(bytes), block.Values(bytes));
            rows = block.Count;
            return true;
        }
        if (!JsonRows.TryParse(body.Span, push: true, maxKeys, out var json, out error)) return false;
        using (json)
        {
            if (json.Count == 0) return true;
            if (!RowRules.Check(table, json.Dim, isPull: false, json.Count, json.LastKey, out error)) return false;
            if (json.IsRange) store.PushRange(table, json.First, json.Count, json.Values);
            else store.Push(table, json.Keys, json.Values);
            rows = json.Count;
            return true;
        }
    }

    private static async Task<IResult> PullAsync(string table, HttpRequest request, StoreHost host, NodeSettings settings)
    {
        if (!TryOpen(host, table, out var store, out var handle, out var problem)) return problem;
        if (!Negotiation.TryRequestFormat(request, out var format, out var error)) return Problems.From(error);
        if (!Negotiation.TryReplyFormat(request, format, out var replyFormat, out error)) return Problems.From(error);
        var (body, readError) = await RequestBody.ReadAsync(request, settings.MaxBodyBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        using (body)
        {
            var reply = BuildPull(store, handle, body, format, replyFormat, settings, out error);
            if (reply is null) return Problems.From(error);
            return new BufferReply(reply, replyFormat == BodyFormat.Kv ? MediaTypes.KvBlock : MediaTypes.Json, Negotiation.AcceptsLz4(request));
        }
    }

    private static PooledBuffer? BuildPull(ParamStore store, TableHandle table, PooledBuffer body, BodyFormat format, BodyFormat replyFormat, NodeSettings settings, out ProtocolError error)
    {
        if (format == BodyFormat.Kv)
        {
            ReadOnlySpan<byte> bytes = body.Span;
            if (!KvBlock.TryParse(bytes, KvExpect.NoValues, settings.MaxKeys, out var block, out error)) return null;
            if (!RowRules.Check(table, block.Dim, isPull: true, block.Count, block.LastKey(bytes), out error)) return null;
            return Reply(store, table, replyFormat, block.IsRange, block.First, block.Keys(bytes), block.Count, settings, out error);
        }
        if (!JsonRows.TryParse(body.Span, push: false, settings.MaxKeys, out var json, out error)) return null;
        using (json)
        {
            if (!RowRules.Check(table, 0, isPull: true, json.Count, json.LastKey, out error)) return null;
            return Reply(store, table, replyFormat, json.IsRange, json.First, json.Keys, json.Count, settings, out error);
        }
    }

    /// <summary>Builds the reply, pulling straight into its values section (binary) or a pooled scratch array (JSON).</summary>
    private static PooledBuffer? Reply(ParamStore store, TableHandle table, BodyFormat replyFormat, bool range, ulong first, ReadOnlySpan<ulong> keys, int count, NodeSettings settings, out ProtocolError error)
    {
        if (!RowRules.CheckReplySize(table, range, count, settings.MaxBodyBytes, out long size, out error)) return null;
        int dim = table.Dim;
        if (replyFormat == BodyFormat.Kv)
        {
            var reply = new PooledBuffer((int)size) { Length = (int)size };
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
        store = null!;
        handle = null!;
        problem = null!;
        if (!TableNames.IsValid(table)) { problem = Problems.InvalidName(table); return false; }
        if (host.Store is not { } open) { problem = Problems.Unavailable(); return false; }
        if (!open.TryGetTable(table, out var found)) { problem = Problems.TableNotFound(table); return false; }
        store = open;
        handle = found;
        return true;
    }
}
