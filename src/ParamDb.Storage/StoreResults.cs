namespace ParamDb.Storage;

/// <summary>What a table directory did on a create (<see cref="ITableDirectory.CreateAsync"/>).</summary>
public enum CreateTableOutcome
{
    /// <summary>A new, empty table was created.</summary>
    Created,
    /// <summary>A table of that name and the identical schema already existed; nothing changed.</summary>
    AlreadyExists,
    /// <summary>A table of that name exists with another schema; nothing changed.</summary>
    Conflict,
}

/// <summary>Size of one table.</summary>
/// <param name="Rows">Distinct stored rows (rows only ever pulled are not stored).</param>
/// <param name="Bytes">Rows × stored bytes per row (row values plus optimizer state).</param>
public readonly record struct TableStats(long Rows, long Bytes);

/// <summary>A completed checkpoint.</summary>
/// <param name="Token">FASTER checkpoint token (the folder name under <c>checkpoints/</c>).</param>
/// <param name="Duration">Wall time from start to durable, compaction included.</param>
/// <param name="CompletedAt">When it became durable.</param>
public readonly record struct CheckpointResult(Guid Token, TimeSpan Duration, DateTimeOffset CompletedAt);

/// <summary>Addresses of the hybrid log, in bytes of log space, for metrics and the compaction rule.</summary>
/// <param name="BeginAddress">Oldest live log address; everything below is garbage or truncated.</param>
/// <param name="HeadAddress">Start of the in-memory part; [Begin, Head) is only on disk.</param>
/// <param name="TailAddress">Next address to be written.</param>
/// <param name="LiveBytes">Log space the live rows of all tables (and the catalog) need.</param>
public readonly record struct LogStats(long BeginAddress, long HeadAddress, long TailAddress, long LiveBytes)
{
    /// <summary>Log space in use, live and garbage: <c>Tail − Begin</c>.</summary>
    public long LogBytes => TailAddress - BeginAddress;
}
