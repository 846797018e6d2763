using System.Net;

namespace ParamDb.Client;

/// <summary>How request and reply bodies of push and pull travel.</summary>
public enum ParamDbCompression
{
    /// <summary>Plain KV blocks. Best for dense random floats, which LZ4 cannot shrink.</summary>
    None,

    /// <summary>
    /// KV blocks in the LZ4 frame format: requests carry <c>Content-Encoding: lz4</c> and pulls send
    /// <c>Accept-Encoding: lz4</c> so replies come compressed too. Worth it for sparse gradients
    /// (90 % zeros shrink to ~18 %); dense random floats pass through uncompressed at ~17 GB/s.
    /// </summary>
    Lz4,
}

/// <summary>Whether a client sends each node of a cluster its own keys (docs/cluster.md).</summary>
public enum ParamDbRouting
{
    /// <summary>
    /// Asks <c>GET /v1/cluster</c> on the first data call. When the server is a cluster of several nodes, keys are
    /// sliced by the ring and each slice goes straight to its primary, stamped with the ring epoch; a 421
    /// <c>wrong_node</c> refetches the ring and sends the refused slices again. A single node is spoken to as it
    /// always was. The default.
    /// </summary>
    Auto,

    /// <summary>Every request goes whole to the address the client was given, which forwards what it does not own (about 2× the server CPU).</summary>
    Off,
}

/// <summary>Settings of a <see cref="ParamDbClient"/>; every property has a working default.</summary>
public sealed record ParamDbClientOptions
{
    /// <summary>Body compression of push and pull; <see cref="ParamDbCompression.None"/> by default.</summary>
    public ParamDbCompression Compression { get; init; } = ParamDbCompression.None;

    /// <summary>
    /// Time allowed for one call, headers and body, by default 100 s. Applies to the HTTP client the
    /// <see cref="ParamDbClient"/> creates; a caller-supplied <see cref="HttpClient"/> keeps its own.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>
    /// HTTP version spoken to the server, exactly: 1.1 (default) for the REST port 7420, or 2.0 for the
    /// cleartext HTTP/2 port 7421 (prior knowledge, no upgrade). Applies to the client the
    /// <see cref="ParamDbClient"/> creates.
    /// </summary>
    public Version HttpVersion { get; init; } = System.Net.HttpVersion.Version11;

    /// <summary>
    /// Whether push, pull and row reads go straight to the nodes that own their keys when the server is a cluster
    /// (<see cref="ParamDbRouting.Auto"/>, the default), or whole to <see cref="ParamDbClient.BaseAddress"/>, which
    /// forwards them (<see cref="ParamDbRouting.Off"/>, e.g. to measure the difference).
    /// </summary>
    public ParamDbRouting Routing { get; init; } = ParamDbRouting.Auto;

    /// <summary>
    /// How long a call keeps retrying while a cluster has no leader (<c>503 no_leader</c>, which changed nothing),
    /// waiting what the reply's <c>Retry-After</c> says between tries: 10 s by default, ample for an election
    /// (0.4–1.4 s). <see cref="TimeSpan.Zero"/> throws the first <c>no_leader</c> at once.
    /// </summary>
    public TimeSpan NoLeaderWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a routed call keeps trying while a node of the cluster fails (503, or a broken connection): the
    /// ring is fetched again and the node's part sent again, to the node that serves its keys once the cluster has
    /// declared the failed one down (about a second after a process dies). Pulls, and pushes that carry a worker
    /// clock (a <see cref="ParamDbWorker"/>'s, exactly-once at the same clock), are retried this way; a push without
    /// a clock is not, as it may have been applied. 10 s by default; <see cref="TimeSpan.Zero"/> throws the first failure.
    /// </summary>
    public TimeSpan FailoverWait { get; init; } = TimeSpan.FromSeconds(10);
}
