using ParamDb.Storage;

namespace ParamDb.Server.Options;

/// <summary>
/// <see cref="ServerOptions"/> checked and converted to typed values once at start-up, so a bad option
/// stops the process with a message instead of failing on the first request.
/// </summary>
public sealed record NodeSettings
{
    /// <summary>Absolute data directory.</summary>
    public required string DataDirectory { get; init; }
    /// <summary>HTTP/1.1 endpoint.</summary>
    public required ListenAddress Http1 { get; init; }
    /// <summary>HTTP/2 cleartext endpoint.</summary>
    public required ListenAddress Http2 { get; init; }
    /// <summary>Hybrid-log memory budget, in bytes.</summary>
    public required long MemoryBytes { get; init; }
    /// <summary>Periodic checkpoint interval; zero when off.</summary>
    public required TimeSpan CheckpointInterval { get; init; }
    /// <summary>Largest request body before and after decompression, in bytes.</summary>
    public required long MaxBodyBytes { get; init; }
    /// <summary>Largest import body, in bytes: the import route's own request-body limit.</summary>
    public long MaxImportBytes { get; init; } = 64L << 30;
    /// <summary>Most rows per request.</summary>
    public required int MaxKeys { get; init; }
    /// <summary>Checkpoints kept on disk.</summary>
    public required int CheckpointsToKeep { get; init; }
    /// <summary>Named snapshots kept (0: all).</summary>
    public int SnapshotsToKeep { get; init; }
    /// <summary>When writes are acknowledged.</summary>
    public DurabilityMode Durability { get; init; } = DurabilityMode.Wal;
    /// <summary>Write-ahead log bytes that trigger an early checkpoint; 0 when off.</summary>
    public long CheckpointWalBytes { get; init; } = 2L << 30;
    /// <summary>Per stream: bytes of queued replies, and separately bytes of request blocks held by waiting pulls.</summary>
    public long StreamBufferBytes { get; init; } = 64L << 20;
    /// <summary>Per stream: pulls waiting for clocks at once.</summary>
    public int StreamMaxWaiting { get; init; } = 65536;
    /// <summary>Keys a table export sorts in memory at once (8 bytes each); larger tables sort in runs on disk.</summary>
    public int ExportRunKeys { get; init; } = ParamDb.Storage.Export.TableExport.DefaultRunKeys;

    /// <summary>
    /// Host names answered besides loopback ones (lower case, IPv6 without brackets); null when not configured (then
    /// the listen addresses decide, see <see cref="ServerOptions.AllowedHosts"/>); containing <c>*</c> when any is.
    /// </summary>
    public IReadOnlyList<string>? AllowedHosts { get; init; }

    /// <summary>The cluster options (whether the node founds, joins or rejoins a cluster is decided at start).</summary>
    public ClusterSettings? Cluster { get; init; }

    /// <summary>Smallest run an export may use: 1,024 keys (8 KiB); below it the run files cost more than the sort.</summary>
    public const int MinExportRunKeys = 1024;

    /// <summary>Largest run: 128 Mi keys, a 1 GiB buffer per export.</summary>
    public const int MaxExportRunKeys = 128 << 20;

    /// <summary>Converts <paramref name="o"/>, throwing <see cref="OptionsException"/> naming the bad option.</summary>
    public static NodeSettings From(ServerOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.Data)) throw new OptionsException("--data must name a directory.");
        if (!ListenAddress.TryParse(o.Listen, out var http1, out var e1)) throw new OptionsException($"--listen: {e1}");
        if (!ListenAddress.TryParse(o.ListenH2, out var http2, out var e2)) throw new OptionsException($"--listen-h2: {e2}");
        if (!Units.TryParseSize(o.Memory, out long memory) || memory < (16L << 20))
            throw new OptionsException($"--memory: '{o.Memory}' is not a size of at least 16m (e.g. 64m, 4g).");
        if (!Units.TryParseDuration(o.CheckpointInterval, out var interval))
            throw new OptionsException($"--checkpoint-interval: '{o.CheckpointInterval}' is not a duration (e.g. 60s, 5m, 0 for off).");
        if (!Units.TryParseSize(o.MaxBodySize, out long maxBody) || maxBody < 1024 || maxBody > int.MaxValue)
            throw new OptionsException($"--max-body-size: '{o.MaxBodySize}' must be a size from 1k to 2g (one body is held in one buffer).");
        if (!Units.TryParseSize(o.MaxImport, out long maxImport) || maxImport < 1024)
            throw new OptionsException($"--max-import: '{o.MaxImport}' is not a size of at least 1k (e.g. 64g).");
        if (o.MaxKeys < 1) throw new OptionsException($"--max-keys must be at least 1; got {o.MaxKeys}.");
        if (o.CheckpointsToKeep < 1) throw new OptionsException($"--checkpoints-to-keep must be at least 1; got {o.CheckpointsToKeep}.");
        if (o.SnapshotsToKeep < 0) throw new OptionsException($"--snapshots-to-keep must be 0 (keep all) or more; got {o.SnapshotsToKeep}.");
        if (!Units.TryParseSize(o.StreamBuffer, out long streamBuffer) || streamBuffer < 64 * 1024)
            throw new OptionsException($"--stream-buffer: '{o.StreamBuffer}' is not a size of at least 64k (e.g. 64m).");
        if (o.StreamMaxWaiting < 0) throw new OptionsException($"--stream-max-waiting must be 0 or more; got {o.StreamMaxWaiting}.");
        DurabilityMode durability = o.Durability?.Trim().ToLowerInvariant() switch
        {
            "wal" => DurabilityMode.Wal,
            "fsync" => DurabilityMode.Fsync,
            "checkpoint" => DurabilityMode.Checkpoint,
            _ => throw new OptionsException($"--durability: '{o.Durability}' is not one of wal, fsync, checkpoint."),
        };
        if (!Units.TryParseSize(o.CheckpointWal, out long checkpointWal) || (checkpointWal != 0 && checkpointWal < (1L << 20)))
            throw new OptionsException($"--checkpoint-wal: '{o.CheckpointWal}' is not 0 or a size of at least 1m (e.g. 2g).");
        if (o.ExportRunKeys is < MinExportRunKeys or > MaxExportRunKeys)
            throw new OptionsException($"--export-run-keys must be from {MinExportRunKeys} to {MaxExportRunKeys}; got {o.ExportRunKeys}.");
        IReadOnlyList<string>? allowedHosts = ParseAllowedHosts(o.AllowedHosts);
        ClusterSettings cluster = ClusterSettings.From(o.Cluster);
        return new NodeSettings
        {
            DataDirectory = Path.GetFullPath(o.Data),
            Http1 = http1,
            Http2 = http2,
            MemoryBytes = memory,
            CheckpointInterval = interval,
            MaxBodyBytes = maxBody,
            MaxImportBytes = maxImport,
            MaxKeys = o.MaxKeys,
            CheckpointsToKeep = o.CheckpointsToKeep,
            SnapshotsToKeep = o.SnapshotsToKeep,
            StreamBufferBytes = streamBuffer,
            StreamMaxWaiting = o.StreamMaxWaiting,
            Durability = durability,
            CheckpointWalBytes = checkpointWal,
            ExportRunKeys = o.ExportRunKeys,
            AllowedHosts = allowedHosts,
            Cluster = cluster,
        };
    }

    private static List<string>? ParseAllowedHosts(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var hosts = new List<string>();
        foreach (string entry in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string host = entry.Trim('[', ']').ToLowerInvariant();
            // A Host header's name is compared without its port, so a port here could never match.
            if (host != "*" && Uri.CheckHostName(host) == UriHostNameType.Unknown)
                throw new OptionsException($"--allowed-hosts: '{entry}' is not a host name or IP address (give names without ports, comma-separated; * allows any).");
            hosts.Add(host);
        }
        return hosts.Count == 0 ? null : hosts;
    }
}

/// <summary>An option that cannot be used; the message names it and says what is expected.</summary>
public sealed class OptionsException(string message) : Exception(message);
