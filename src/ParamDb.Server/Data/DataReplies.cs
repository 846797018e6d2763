using System.Text.Json;
using ParamDb.Protocol;
using ParamDb.Server.Http;
using ParamDb.Storage;

namespace ParamDb.Server.Data;

/// <summary>The replies REST and the stream build alike: a pull's KV block, and an error's problem details.</summary>
public static class DataReplies
{
    /// <summary>
    /// Reads the rows of a planned pull into a new KV reply block that starts <paramref name="headroom"/> bytes
    /// into the returned buffer (the stream writes its reply header there). The rows go straight into the
    /// reply's values section.
    /// </summary>
    /// <returns>The reply, and what the read reports (an error from a part read on another node, and the lowest
    /// clock of those parts); the caller disposes the reply either way.</returns>
    public static async ValueTask<(PooledBuffer Reply, ClockWait Read)> PullKvAsync(IDataPlane data, TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan,
        PullOptions options, int headroom, CancellationToken cancellationToken)
    {
        int size = checked((int)KvBlockWriter.SizeOf(plan.IsRange, plan.Count, table.Dim, values: true));
        var reply = new PooledBuffer(headroom + size) { Length = headroom + size };
        try
        {
            int valuesOffset = headroom + WriteHeader(reply.Array.AsSpan(headroom, size), block.Span, plan, table.Dim);
            ClockWait read = await data.ReadAsync(table, block, plan, options, reply.Array.AsMemory(valuesOffset, headroom + size - valuesOffset), cancellationToken).ConfigureAwait(false);
            return (reply, read);
        }
        catch
        {
            reply.Dispose();
            throw;
        }
    }

    private static int WriteHeader(Span<byte> span, ReadOnlySpan<byte> block, in KvBlock plan, int dim) =>
        KvBlockWriter.WriteForValues(span, plan.IsRange, plan.First, plan.IsRange ? default : plan.Keys(block), plan.Count, dim);

    /// <summary>The problem-details JSON (UTF-8) of an error, as the stream's error replies carry it.</summary>
    public static byte[] ProblemJson(ProtocolError error, IReadOnlyList<WorkerClock>? behind = null, ulong? target = null) =>
        JsonSerializer.SerializeToUtf8Bytes(new ProblemReply
        {
            Title = Problems.TitleOf(error.Code),
            Status = error.Status,
            Detail = error.Detail,
            Code = error.Code,
            Behind = behind,
            Target = target,
        }, ProtocolJson.Default.ProblemReply);
}
