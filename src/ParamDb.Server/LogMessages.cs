namespace ParamDb.Server;

/// <summary>
/// Every log line of the server host, source-generated so a disabled level costs one check. Event ids from 100,
/// apart from the storage layer's (1–99) and the cluster's (1–99 in its own category).
/// </summary>
internal static partial class LogMessages
{
    [LoggerMessage(102, LogLevel.Information, "Shutdown checkpoint {Token} took {Milliseconds:F0} ms")]
    public static partial void ShutdownCheckpoint(this ILogger logger, Guid token, double milliseconds);

    [LoggerMessage(103, LogLevel.Information, "Restored snapshot {Name}; requests were held for {Milliseconds:F0} ms")]
    public static partial void Restored(this ILogger logger, string name, double milliseconds);

    [LoggerMessage(104, LogLevel.Error, "The restored snapshot did not open; rolling back to the node's own data")]
    public static partial void RestoreFailed(this ILogger logger, Exception exception);

    [LoggerMessage(110, LogLevel.Information, "Periodic checkpoint {Token} took {Milliseconds:F0} ms")]
    public static partial void Checkpoint(this ILogger logger, Guid token, double milliseconds);

    [LoggerMessage(111, LogLevel.Error, "Periodic checkpoint failed; the previous checkpoint stays the recovery point")]
    public static partial void CheckpointFailed(this ILogger logger, Exception exception);

    [LoggerMessage(112, LogLevel.Information, "Checkpoint {Token} after {WalMiB} MiB of write-ahead log took {Milliseconds:F0} ms")]
    public static partial void WalCheckpoint(this ILogger logger, Guid token, long walMiB, double milliseconds);

    [LoggerMessage(140, LogLevel.Error, "Stream request {RequestId} failed inside the server; answered 500")]
    public static partial void FrameFailed(this ILogger logger, ulong requestId, Exception exception);

    [LoggerMessage(120, LogLevel.Information, "ParamDb {Version} listening on {Http1} (HTTP/1.1: REST, Swagger UI at /swagger) and {Http2} (HTTP/2 cleartext); data in {Directory}")]
    public static partial void Listening(this ILogger logger, string version, string? http1, string? http2, string directory);

    [LoggerMessage(121, LogLevel.Information, "ParamDb {Version} listening on {Http1} (HTTP/1.1: REST, Swagger UI at /swagger) and {Http2} (HTTP/2 cleartext), and on {Extra} (Kestrel settings); data in {Directory}")]
    public static partial void ListeningWithExtra(this ILogger logger, string version, string? http1, string? http2, string extra, string directory);

    [LoggerMessage(141, LogLevel.Warning, "Refused a peer request from {Remote} without the cluster secret: {Method} {Path}")]
    public static partial void PeerRefused(this ILogger logger, string remote, string method, string path);
}
