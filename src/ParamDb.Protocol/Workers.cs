namespace ParamDb.Protocol;

/// <summary>The body of <c>POST /v1/workers</c>.</summary>
public sealed record WorkerRegistration
{
    /// <summary>A name for people and logs (1…128 characters); several workers may share it.</summary>
    public string? Name { get; init; }

    /// <summary>The tables whose consistent pulls wait for this worker; null or empty means every table.</summary>
    public IReadOnlyList<string>? Tables { get; init; }

    /// <summary>Lease in milliseconds (default <see cref="WorkerLimits.DefaultLeaseMs"/>); a worker not heard from for that long stops counting.</summary>
    public int? LeaseMs { get; init; }
}

/// <summary>Bounds of a worker registration.</summary>
public static class WorkerLimits
{
    /// <summary>Default lease: 10 s, a few heartbeats' worth at the client's default interval of a third of it.</summary>
    public const int DefaultLeaseMs = 10_000;

    /// <summary>Shortest lease: 100 ms.</summary>
    public const int MinLeaseMs = 100;

    /// <summary>Longest lease: one hour.</summary>
    public const int MaxLeaseMs = 3_600_000;

    /// <summary>Longest worker name, in characters.</summary>
    public const int MaxNameLength = 128;

    /// <summary>Most tables one registration may name.</summary>
    public const int MaxTables = 1024;
}

/// <summary>A registered worker, as the workers API reports it.</summary>
public sealed record WorkerInfo
{
    /// <summary>The worker id to send in <c>ParamDb-Worker</c>; never reused.</summary>
    public required uint Worker { get; init; }

    /// <summary>The registered name.</summary>
    public required string Name { get; init; }

    /// <summary>The tables it counts for; empty means every table.</summary>
    public required IReadOnlyList<string> Tables { get; init; }

    /// <summary>Lease in milliseconds.</summary>
    public required int LeaseMs { get; init; }

    /// <summary>False once the lease has expired: the worker no longer holds back consistent pulls.</summary>
    public bool Live { get; init; }

    /// <summary>Milliseconds until the lease expires (0 when expired).</summary>
    public long ExpiresInMs { get; init; }
}

/// <summary>The reply of <c>GET /v1/workers</c>.</summary>
public sealed record WorkerList
{
    /// <summary>Every registered worker, by id.</summary>
    public required IReadOnlyList<WorkerInfo> Workers { get; init; }
}

/// <summary>A worker behind a consistent pull's target, as a <c>clock_wait_timeout</c> problem names it.</summary>
/// <param name="Worker">Worker id.</param>
/// <param name="Name">Registered name.</param>
/// <param name="Clock">The highest clock of this worker applied to the table on this node.</param>
public sealed record WorkerClock(uint Worker, string Name, ulong Clock);
