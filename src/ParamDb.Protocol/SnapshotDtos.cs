namespace ParamDb.Protocol;

/// <summary>The body of <c>POST /v1/snapshots</c>.</summary>
public sealed record SnapshotRequest
{
    /// <summary>The snapshot's name, <c>[A-Za-z0-9_.-]{1,128}</c>, not starting with a dot.</summary>
    public string? Name { get; init; }
}

/// <summary>A snapshot as <c>GET /v1/snapshots/{name}</c> reports it: what it holds and what it takes on disk.</summary>
public sealed record SnapshotInfo
{
    /// <summary>The snapshot's name.</summary>
    public required string Name { get; init; }
    /// <summary>When its checkpoint cut the state (UTC).</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>Every table at that moment, by name, with its schema and rows.</summary>
    public required IReadOnlyList<SnapshotTable> Tables { get; init; }
    /// <summary>Rows of all tables.</summary>
    public long Rows { get; init; }
    /// <summary>
    /// Bytes the snapshot stores (its hybrid-log segments and checkpoint files), all-zero 64 KiB blocks left out:
    /// they are holes in its sparse files, so this is about what it takes on disk, while the files' lengths
    /// (<c>du --apparent-size</c>) still count the empty buckets of the hash index.
    /// </summary>
    public long Bytes { get; init; }
    /// <summary>Workers registered at that moment; their clocks are in the snapshot.</summary>
    public int Workers { get; init; }
}

/// <summary>One table inside a snapshot.</summary>
public sealed record SnapshotTable
{
    /// <summary>Table name.</summary>
    public required string Name { get; init; }
    /// <summary>Its normalized schema.</summary>
    public required TableSchema Schema { get; init; }
    /// <summary>Rows stored at the snapshot's cut.</summary>
    public long Rows { get; init; }
}

/// <summary>The reply of <c>GET /v1/snapshots</c>.</summary>
public sealed record SnapshotList
{
    /// <summary>Every snapshot, newest first.</summary>
    public required IReadOnlyList<SnapshotInfo> Snapshots { get; init; }
}

/// <summary>The reply of <c>POST /v1/snapshots/{name}/restore</c>.</summary>
public sealed record RestoreReply
{
    /// <summary>The snapshot the node now serves.</summary>
    public required SnapshotInfo Snapshot { get; init; }
    /// <summary>Wall time of the restore, copy and reopen included.</summary>
    public double DurationMs { get; init; }
    /// <summary>How long requests were held while the node swapped its data (part of <see cref="DurationMs"/>).</summary>
    public double PausedMs { get; init; }
}
