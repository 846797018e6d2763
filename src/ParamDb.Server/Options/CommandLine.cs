namespace ParamDb.Server.Options;

/// <summary>The <c>paramdb</c> command line: short switches mapped onto the <c>ParamDb</c> configuration section.</summary>
public static class CommandLine
{
    /// <summary>Switch → configuration key, for <c>AddCommandLine</c>.</summary>
    public static readonly IReadOnlyDictionary<string, string> SwitchMappings = new Dictionary<string, string>
    {
        ["--data"] = "ParamDb:Data",
        ["--listen"] = "ParamDb:Listen",
        ["--listen-h2"] = "ParamDb:ListenH2",
        ["--memory"] = "ParamDb:Memory",
        ["--checkpoint-interval"] = "ParamDb:CheckpointInterval",
        ["--max-body-size"] = "ParamDb:MaxBodySize",
        ["--max-import"] = "ParamDb:MaxImport",
        ["--max-keys"] = "ParamDb:MaxKeys",
        ["--checkpoints-to-keep"] = "ParamDb:CheckpointsToKeep",
        ["--snapshots-to-keep"] = "ParamDb:SnapshotsToKeep",
        ["--stream-buffer"] = "ParamDb:StreamBuffer",
        ["--stream-max-waiting"] = "ParamDb:StreamMaxWaiting",
        ["--durability"] = "ParamDb:Durability",
        ["--checkpoint-wal"] = "ParamDb:CheckpointWal",
        ["--export-run-keys"] = "ParamDb:ExportRunKeys",
    };

    /// <summary>Usage text for <c>--help</c>.</summary>
    public const string Usage = """
        paramdb — a parameter database for machine learning

        Usage: paramdb [options]            run a node
               paramdb COMMAND [args]       talk to a running node (commands below)

          --data DIR                 data directory (default ./paramdb-data)
          --listen HOST:PORT         HTTP/1.1 endpoint: REST, Swagger UI (default 127.0.0.1:7420)
          --listen-h2 HOST:PORT      HTTP/2 cleartext endpoint (default 127.0.0.1:7421)
          --memory SIZE              hybrid-log memory budget, e.g. 64m, 4g (default 1g)
          --checkpoint-interval DUR  periodic checkpoints, e.g. 60s, 5m; 0 = off (default 60s)
          --max-body-size SIZE       largest request body, compressed or not (default 256m)
          --max-import SIZE          largest import body, spooled to DATA/tmp (default 64g)
          --max-keys N               most rows per request (default 16777216)
          --checkpoints-to-keep N    checkpoints kept on disk (default 2)
          --snapshots-to-keep N      named snapshots kept; a new one deletes the oldest beyond N;
                                     0 = keep all (default 0)
          --durability MODE          when a write is acknowledged: wal (its log record reached the OS:
                                     survives kill -9), fsync (survives power loss), checkpoint (in
                                     memory: a crash loses what followed the last checkpoint) (default wal)
          --checkpoint-wal SIZE      checkpoint early once the write-ahead log grew this much; 0 = off
                                     (default 2g)
          --stream-buffer SIZE       per stream: queued replies, and blocks of waiting pulls (default 64m)
          --stream-max-waiting N     per stream: pulls waiting for clocks at once (default 65536)
          --export-run-keys N        per export: keys sorted in memory at once, 8 bytes each (default 4194304)

        Every option can also be set as configuration (section ParamDb in appsettings.json)
        or as an environment variable: ParamDb__Data, ParamDb__Listen, ParamDb__Memory, …
        """;
}
