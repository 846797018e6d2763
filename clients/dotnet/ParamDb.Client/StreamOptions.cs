using ParamDb.Protocol;

namespace ParamDb.Client;

/// <summary>Settings of a <see cref="ParamDbStream"/>; every property has a working default.</summary>
public sealed record ParamDbStreamOptions
{
    /// <summary>
    /// Most requests on the wire at once, written but not yet answered (default 64). Further requests wait in the
    /// client's send queue, in call order, so a stalled server is not flooded; the calls themselves never block.
    /// </summary>
    public int MaxInFlight { get; init; } = 64;

    /// <summary>
    /// How many times a request is sent again on a new stream after its stream failed in transit (a reset
    /// connection, the server going away), by default 3. Replays keep the request's (worker, clock), so a push
    /// stays exactly-once; after the last one the call fails with <see cref="IOException"/>. 0 disables replay.
    /// A push without a stamp is never replayed (the server could not tell the replay from a new push).
    /// </summary>
    public int MaxRetries { get; init; } = 3;

    /// <summary>
    /// Wait before reconnecting after a failure, by default 100 ms; it doubles with each consecutive failure,
    /// up to <see cref="MaxRetryBackoff"/>.
    /// </summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest wait between reconnects, by default 5 s.</summary>
    public TimeSpan MaxRetryBackoff { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Compression of requests and replies unless a call says otherwise; <see cref="ParamDbCompression.None"/> by default.</summary>
    public ParamDbCompression Compression { get; init; } = ParamDbCompression.None;

    /// <summary>
    /// How long the server lets a consistent pull wait for clocks before it answers <c>clock_wait_timeout</c>,
    /// sent once per stream as <c>ParamDb-Timeout-Ms</c>; null leaves the server's default (30 s).
    /// </summary>
    public TimeSpan? ClockWaitTimeout { get; init; }

    /// <summary>Time allowed to open a stream (connection and response headers), by default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long <see cref="ParamDbStream.DisposeAsync"/> waits for requests already made to be answered, by
    /// default 5 s; what is still unanswered then fails with <see cref="ObjectDisposedException"/>.
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Headers sent on the stream's request, e.g. a cluster peer's secret; none by default.</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxInFlight, 1, nameof(MaxInFlight));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxRetries, nameof(MaxRetries));
        ArgumentOutOfRangeException.ThrowIfLessThan(RetryBackoff, TimeSpan.Zero, nameof(RetryBackoff));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRetryBackoff, RetryBackoff, nameof(MaxRetryBackoff));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero, nameof(ConnectTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(CloseTimeout, TimeSpan.Zero, nameof(CloseTimeout));
        if (ClockWaitTimeout is { } wait) ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(wait, TimeSpan.Zero, nameof(ClockWaitTimeout));
    }
}

/// <summary>Per-call settings; a null member takes the stream's or worker's default.</summary>
public readonly record struct ParamDbCallOptions
{
    /// <summary>
    /// How fresh a pull must be (docs/consistency.md): eventual never waits; sequential waits until every live worker
    /// reached clock c-1; bounded τ until c-1-τ. Only pulls that carry a clock wait. Ignored by pushes.
    /// </summary>
    public Consistency? Consistency { get; init; }

    /// <summary>LZ4-frame this request's block, and have the server frame the reply.</summary>
    public ParamDbCompression? Compression { get; init; }

    /// <summary>
    /// Client-side deadline for this call; past it the call throws <see cref="TimeoutException"/> and a late
    /// reply is dropped. A push that timed out may or may not have been applied: pushing it again at the same
    /// clock is safe. Null: no deadline beyond the server's clock-wait timeout.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// The ring epoch the caller sliced this request's keys by (<c>GET /v1/cluster</c>, docs/cluster.md): the node
    /// then serves only keys it owns in that epoch and answers 421 <c>wrong_node</c> otherwise. Null or 0: the node
    /// routes the keys itself.
    /// </summary>
    public ulong? RingEpoch { get; init; }
}

/// <summary>Who sends a request, at which clock: the frame's worker and clock fields (docs/streaming.md, docs/consistency.md).</summary>
/// <param name="Worker">Registered worker id; 0 for an anonymous request (never deduplicated, never waits).</param>
/// <param name="Clock">The worker's clock; 0 for none.</param>
public readonly record struct ClockStamp(uint Worker, ulong Clock)
{
    /// <summary>No worker, no clock.</summary>
    public static ClockStamp None => default;
}

/// <summary>What a pull into a caller's buffer reports beside the rows.</summary>
/// <param name="ClockMin">
/// The lowest clock of any live worker counting for the table, over the ranges read (the reply's clock field):
/// every live worker's pushes up to this clock are in the rows. 0 when no live worker counts for the table, or
/// when one of them has not pushed or ticked yet.
/// </param>
public readonly record struct PullResult(ulong ClockMin);

/// <summary>The outcome of a push followed by a pull of the same keys.</summary>
/// <param name="Push">Rows received and applied by the push.</param>
/// <param name="Pull">The pull's freshness.</param>
public readonly record struct PushPullResult(PushResult Push, PullResult Pull);
