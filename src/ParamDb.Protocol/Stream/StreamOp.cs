namespace ParamDb.Protocol.Stream;

/// <summary>The operation of a stream request frame (docs/streaming.md).</summary>
public enum StreamOp : byte
{
    /// <summary>Push: the KV block carries VALUES.</summary>
    Push = 1,
    /// <summary>Pull: the KV block has no VALUES; the reply carries the rows.</summary>
    Pull = 2,
    /// <summary>Tick: an empty push that only advances the worker's clock.</summary>
    Tick = 3,
}

/// <summary>Flag bits of a stream frame (request: u8, reply: u16).</summary>
[Flags]
public enum StreamFrameFlags : ushort
{
    /// <summary>Plain payload.</summary>
    None = 0,
    /// <summary>The KV block (request) or payload (reply) is one LZ4 frame.</summary>
    Lz4 = 1,
    /// <summary>
    /// Requests only: a u64 ring epoch follows the padded table name (the frame form of <c>ParamDb-Ring-Epoch</c>,
    /// docs/cluster.md), so the node serves only keys it owns in that epoch, and answers 421 otherwise.
    /// </summary>
    RingEpoch = 2,
}
