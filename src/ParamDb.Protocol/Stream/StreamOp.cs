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
}
