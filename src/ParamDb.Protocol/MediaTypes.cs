namespace ParamDb.Protocol;

/// <summary>Media types, encodings and header names of the v1 HTTP contract (docs/wire-format.md, docs/consistency.md).</summary>
public static class MediaTypes
{
    /// <summary>The binary KV block (docs/wire-format.md).</summary>
    public const string KvBlock = "application/x-paramdb-kv";

    /// <summary>Record batches of a range transfer between cluster peers, one after the other (docs/replication.md).</summary>
    public const string Records = "application/x-paramdb-records";

    /// <summary>The body of <c>POST /v1/stream</c>, both ways: a sequence of frames (docs/streaming.md).</summary>
    public const string Stream = "application/x-paramdb-stream";

    /// <summary>JSON bodies.</summary>
    public const string Json = "application/json";

    /// <summary>RFC 7807 problem details.</summary>
    public const string Problem = "application/problem+json";

    /// <summary>The <c>Content-Encoding</c> / <c>Accept-Encoding</c> token for the LZ4 frame format.</summary>
    public const string Lz4Encoding = "lz4";
}

/// <summary>ParamDb's own HTTP headers.</summary>
public static class ParamDbHeaders
{
    /// <summary>The registered worker id a push or pull is made for.</summary>
    public const string Worker = "ParamDb-Worker";

    /// <summary>The worker's clock.</summary>
    public const string Clock = "ParamDb-Clock";

    /// <summary><c>eventual</c> | <c>sequential</c> | <c>bounded:τ</c>.</summary>
    public const string Consistency = "ParamDb-Consistency";

    /// <summary>How long a pull may wait for clocks, in milliseconds.</summary>
    public const string TimeoutMs = "ParamDb-Timeout-Ms";

    /// <summary>On a pull reply: the minimum clock of the ranges read.</summary>
    public const string ClockMin = "ParamDb-Clock-Min";

    /// <summary>
    /// On a request: the ring epoch the client sliced its keys by (docs/cluster.md), so the node serves only keys
    /// it owns and answers 421 <c>wrong_node</c> otherwise; on a 421 reply: the node's epoch.
    /// </summary>
    public const string RingEpoch = "ParamDb-Ring-Epoch";

    /// <summary>
    /// On a pull: <c>primary</c> (the default) or <c>any</c>. With <c>any</c> an <c>eventual</c> pull may be answered from
    /// a backup's copy of the keys (docs/replication.md, "Reads").
    /// </summary>
    public const string ReadFrom = "ParamDb-Read-From";
}
