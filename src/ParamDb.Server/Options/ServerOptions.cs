namespace ParamDb.Server.Options;

/// <summary>
/// Node options, bound from the configuration section <c>ParamDb</c>: command-line switches
/// (<c>--data</c>, <c>--listen</c>…, see <see cref="CommandLine"/>), environment variables
/// (<c>ParamDb__Data=/data</c>) or appsettings.json. Defaults live here.
/// </summary>
public sealed class ServerOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "ParamDb";

    /// <summary>Data directory: the FASTER log and checkpoints.</summary>
    public string Data { get; set; } = "./paramdb-data";

    /// <summary>HTTP/1.1 endpoint (REST, Swagger UI, browsers), HOST:PORT.</summary>
    public string Listen { get; set; } = "127.0.0.1:7420";

    /// <summary>HTTP/2 cleartext endpoint (prior knowledge): the stream and REST for h2 clients, HOST:PORT.
    /// Kestrel cannot serve HTTP/1.1 and h2c on one cleartext port (dotnet/aspnetcore#56984), hence two.</summary>
    public string ListenH2 { get; set; } = "127.0.0.1:7421";

    /// <summary>Memory budget of the hybrid log, e.g. <c>64m</c>, <c>4g</c>; rows beyond it spill to disk.</summary>
    public string Memory { get; set; } = "1g";

    /// <summary>Time between periodic checkpoints, e.g. <c>60s</c>, <c>5m</c>; <c>0</c> turns them off.</summary>
    public string CheckpointInterval { get; set; } = "60s";

    /// <summary>Largest request body, before and after decompression, e.g. <c>256m</c>.</summary>
    public string MaxBodySize { get; set; } = "256m";

    /// <summary>
    /// Largest import body (<c>POST /v1/tables/{t}/import</c>), e.g. <c>64g</c>. An import is spooled to a file under
    /// <c>DATA/tmp/</c>, not held in memory, so this bounds disk, not memory; only the import route gets it.
    /// </summary>
    public string MaxImport { get; set; } = "64g";

    /// <summary>Most rows in one request.</summary>
    public int MaxKeys { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// Per <c>POST /v1/stream</c>: the most bytes of replies queued for a client that reads slower than it
    /// sends (past it the server stops reading the stream), and separately the most bytes of request blocks
    /// held by pulls waiting for clocks, e.g. <c>64m</c>.
    /// </summary>
    public string StreamBuffer { get; set; } = "64m";

    /// <summary>Per stream, the most pulls waiting for clocks at once; more are answered 429.</summary>
    public int StreamMaxWaiting { get; set; } = 65536;

    /// <summary>Checkpoints kept on disk; older ones are deleted.</summary>
    public int CheckpointsToKeep { get; set; } = 2;

    /// <summary>Named snapshots kept: after a new one, the oldest beyond this many are deleted; 0 keeps them all.</summary>
    public int SnapshotsToKeep { get; set; }

    /// <summary>
    /// When a write is acknowledged: <c>wal</c> (its log record was handed to the OS: survives kill -9),
    /// <c>fsync</c> (its log record is on the device: survives power loss) or <c>checkpoint</c> (in memory: a
    /// crash loses what came after the last checkpoint).
    /// </summary>
    public string Durability { get; set; } = "wal";

    /// <summary>
    /// Write-ahead log bytes after which a checkpoint is taken early, bounding what a recovery replays, e.g.
    /// <c>2g</c>; <c>0</c> leaves it to the interval.
    /// </summary>
    public string CheckpointWal { get; set; } = "2g";

    /// <summary>
    /// Keys a table export sorts in memory at once, 8 bytes each: the default 4 Mi keys holds 32 MiB per export;
    /// larger tables are sorted in runs of this size on disk under <c>DATA/tmp/</c>. Tests set it small to force
    /// many runs.
    /// </summary>
    public int ExportRunKeys { get; set; } = ParamDb.Storage.Export.TableExport.DefaultRunKeys;

    /// <summary>
    /// Host names (the request's <c>Host</c> header, port aside) the node answers besides loopback ones, comma-separated;
    /// <c>*</c> answers any. Unset: a node whose every listen address is loopback answers only loopback names (a
    /// defence against DNS rebinding: a web page whose name resolves to 127.0.0.1 cannot reach the node), any other
    /// node answers any name.
    /// </summary>
    public string? AllowedHosts { get; set; }

    /// <summary>Cluster membership (docs/cluster.md), section <c>ParamDb:Cluster</c>; none of it set: a single node.</summary>
    public ClusterSection Cluster { get; set; } = new();
}

/// <summary>
/// The cluster options, bound from <c>ParamDb:Cluster</c>: <c>--node-id</c>, <c>--raft</c>, <c>--cluster-init</c>,
/// <c>--join</c>, <c>--replicas</c>, <c>--vnodes</c>, <c>--cluster-secret</c>, <c>--down-after</c>, <c>--resync-rate</c>.
/// </summary>
public sealed class ClusterSection
{
    /// <summary>Stable name of the node, <c>[A-Za-z0-9_.-]{1,64}</c>; kept in the data folder after the first start. Default: the host name.</summary>
    public string? NodeId { get; set; }

    /// <summary>The Raft peer endpoint, HOST:PORT (an IP address).</summary>
    public string Raft { get; set; } = "127.0.0.1:7422";

    /// <summary>First start of the first node: found a new cluster.</summary>
    public bool Init { get; set; }

    /// <summary>First start of any other node: the HTTP address (HOST:PORT) of any member.</summary>
    public string? Join { get; set; }

    /// <summary>Copies of each range, primary included (cluster-wide, fixed at init).</summary>
    public int Replicas { get; set; } = 2;

    /// <summary>Ring tokens per node (cluster-wide, fixed at init).</summary>
    public int Vnodes { get; set; } = ParamDb.Protocol.Ring.DefaultVirtualNodes;

    /// <summary>The secret peers prove to each other; required when any endpoint is not loopback.</summary>
    public string? Secret { get; set; }

    /// <summary>Milliseconds without a heartbeat after which the leader declares a node down (docs/replication.md).</summary>
    public int DownAfter { get; set; } = (int)ParamDb.Cluster.ClusterOptions.DefaultDownAfter.TotalMilliseconds;

    /// <summary>MiB per second a primary sends a returning node its arcs at, 0 for no limit (docs/replication.md).</summary>
    public int ResyncRate { get; set; } = (int)(ParamDb.Cluster.ClusterOptions.DefaultResyncBytesPerSecond >> 20);
}
