using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// The data path of a node, as the REST endpoints and the stream use it: push, tick, pull and the clock waits of
/// consistent pulls. Requests arrive as parsed KV blocks (docs/wire-format.md) plus the worker's stamp and the
/// consistency asked for; every rule (layout, dim, key bound, finite values, reply size, worker) is checked here,
/// once, before anything is applied, so a rejected request changes nothing. Expected failures are values
/// (<see cref="ProtocolError"/>), never exceptions.
/// </summary>
/// <remarks>
/// <para>Implementations: <see cref="Local.LocalDataPlane"/> applies everything to this node's store; a cluster's
/// router slices a request by the ring and sends each node its part. The host picks one.</para>
/// <para>Concurrency: every member may be called from many threads at once. A caller that needs its pushes applied
/// in order (the stream) awaits each <see cref="PushAsync"/> before the next; the <see cref="PushReply.Durable"/>
/// tasks may complete later, and in order.</para>
/// </remarks>
public interface IDataPlane
{
    /// <summary>
    /// Checks and applies a push. Acknowledge it only once <see cref="PushReply.Durable"/> completes
    /// (<see cref="PushReply.AwaitDurableAsync"/>).
    /// </summary>
    /// <param name="table">The table, from <see cref="ITableDirectory.TryGet"/>.</param>
    /// <param name="block">A KV block with VALUES, already inflated; it must stay unchanged until the returned task completes.</param>
    /// <param name="options">The worker's stamp and how the request reached this node.</param>
    /// <param name="cancellationToken">Ends a push still waiting for a checkpoint to let it in; once applied, it is not undone.</param>
    ValueTask<PushReply> PushAsync(TableHandle table, ReadOnlyMemory<byte> block, PushOptions options, CancellationToken cancellationToken);

    /// <summary>An empty push: advances the worker's clock on every range of the table (docs/consistency.md).</summary>
    ValueTask<PushReply> TickAsync(TableHandle table, PushOptions options, CancellationToken cancellationToken);

    /// <summary>
    /// Checks a pull before any wait, so a bad pull fails at once: the worker (a pull made for a worker renews its
    /// lease), the block's layout, its keys against the table, and the size of the reply. The plan holds offsets
    /// into <paramref name="block"/>.
    /// </summary>
    bool TryPlanPull(TableHandle table, ReadOnlySpan<byte> block, PullOptions options, out KvBlock plan, out ProtocolError error);

    /// <summary>
    /// Waits, without holding a thread, until every live worker of the table has reached the clock the
    /// consistency asks for, on the ranges this node reads for the pull. Eventual pulls and pulls without a clock
    /// return at once. A pull whose rows other nodes hold waits there, within <see cref="ReadAsync"/>.
    /// </summary>
    ValueTask<ClockWait> WaitAsync(TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PullOptions options, CancellationToken cancellationToken);

    /// <summary>
    /// Reads the rows of a planned pull into <paramref name="destination"/>: <c>plan.Count × Dim</c> float32
    /// values, row-major, little-endian (a KV block's values section; bytes, so a pooled reply buffer can be
    /// filled in place without wrapping it). Rows never pushed read as their initial value. Rows held by other
    /// nodes are pulled from them with the same consistency; the result merges what they report.
    /// </summary>
    /// <returns>None, or the error of a part read elsewhere; the lowest clock of the ranges read elsewhere
    /// (<see cref="ulong.MaxValue"/> when none was).</returns>
    ValueTask<ClockWait> ReadAsync(TableHandle table, ReadOnlyMemory<byte> block, KvBlock plan, PullOptions options, Memory<byte> destination, CancellationToken cancellationToken);
}

/// <summary>How a push reached the node.</summary>
/// <param name="Stamp">The pushing worker and its clock (both 0 for an anonymous push).</param>
/// <param name="RingEpoch">The ring epoch the sender sliced the keys by (docs/cluster.md); 0 when it did not, and
/// the node routes the keys itself.</param>
/// <param name="FromJson">True when the block was built from a JSON body: errors then explain JSON's number rules.</param>
/// <param name="RangesVersion">The store's <see cref="ParamStore.RangesVersion"/> a router sliced the keys against:
/// if the store's ranges changed since, nothing is applied and the push is refused (503). 0: not checked.</param>
public readonly record struct PushOptions(WorkerStamp Stamp, ulong RingEpoch = 0, bool FromJson = false, long RangesVersion = 0);

/// <summary>How a pull reached the node, and what it waits for.</summary>
/// <param name="Worker">The worker pulling, 0 for none.</param>
/// <param name="Clock">The worker's clock, 0 for none.</param>
/// <param name="Consistency">What the pull waits for.</param>
/// <param name="Timeout">How long it may wait.</param>
/// <param name="RingEpoch">The ring epoch the sender sliced the keys by; 0 when the node routes them itself.</param>
/// <param name="AnyCopy">
/// An eventual pull that a node may answer from any copy it holds, a backup's included (<c>ParamDb-Read-From: any</c>),
/// rather than only from the keys' primary.
/// </param>
public readonly record struct PullOptions(uint Worker, ulong Clock, Consistency Consistency, TimeSpan Timeout, ulong RingEpoch = 0, bool AnyCopy = false)
{
    /// <summary>An eventual pull with no worker: reads at once.</summary>
    public static PullOptions Eventual => new(0, 0, Consistency.Eventual, TimeSpan.Zero);
}

/// <summary>The outcome of a push or tick through an <see cref="IDataPlane"/>.</summary>
/// <param name="Error">None when accepted; else why nothing was applied.</param>
/// <param name="Result">When accepted: rows in the request and rows applied.</param>
/// <param name="Durable">Completes when the push is durable in the node's mode; faults when the write-ahead log failed.</param>
public readonly record struct PushReply(ProtocolError Error, PushResult? Result, Task Durable)
{
    /// <summary>A refused push: nothing was applied.</summary>
    public static PushReply Refused(ProtocolError error) => new(error, null, Task.CompletedTask);

    /// <summary>True when the push was accepted (acknowledge it once durable).</summary>
    public bool Accepted => Error.IsNone;

    /// <summary>
    /// Waits until an accepted push is durable; the error when the write-ahead log failed, in which case the
    /// push must not be acknowledged.
    /// </summary>
    public static async ValueTask<ProtocolError> AwaitDurableAsync(Task durable)
    {
        try
        {
            await durable.ConfigureAwait(false);
            return default;
        }
        catch (IOException e)
        {
            return DataErrors.LogFailed(e);
        }
    }
}

/// <summary>The end of a clock wait.</summary>
/// <param name="ClockMin">The table's minimum clock over live workers, for <c>ParamDb-Clock-Min</c>.</param>
/// <param name="Error">None when the clocks were reached (or nothing was waited for); else why the pull fails.</param>
/// <param name="Behind">On timeout: the live workers behind the target.</param>
/// <param name="Target">The clock waited for (0: no wait).</param>
public readonly record struct ClockWait(ulong ClockMin, ProtocolError Error, IReadOnlyList<WorkerClock>? Behind, ulong Target);

/// <summary>Limits a data plane checks requests against (the node's options).</summary>
/// <param name="MaxKeys">Most keys in one request.</param>
/// <param name="MaxReplyBytes">Largest reply a pull may ask for, in bytes.</param>
public sealed record DataLimits(int MaxKeys, long MaxReplyBytes);
