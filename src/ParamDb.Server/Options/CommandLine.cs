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
        ["--allowed-hosts"] = "ParamDb:AllowedHosts",
        ["--node-id"] = "ParamDb:Cluster:NodeId",
        ["--raft"] = "ParamDb:Cluster:Raft",
        ["--join"] = "ParamDb:Cluster:Join",
        ["--replicas"] = "ParamDb:Cluster:Replicas",
        ["--vnodes"] = "ParamDb:Cluster:Vnodes",
        ["--cluster-secret"] = "ParamDb:Cluster:Secret",
        ["--down-after"] = "ParamDb:Cluster:DownAfter",
        ["--resync-rate"] = "ParamDb:Cluster:ResyncRate",
    };

    /// <summary>Founds a cluster (first start of its first node): a switch without a value, read into <c>ParamDb:Cluster:Init</c>.</summary>
    public const string ClusterInit = "--cluster-init";

    /// <summary>Prints a start-up failure's stack trace, not only its message; taken by the program, not configuration.</summary>
    public const string Verbose = "--verbose";

    /// <summary>Switches without a value, read by the program itself and kept from configuration.</summary>
    private static readonly string[] Flags = ["--help", "-h", Verbose, ClusterInit];

    /// <summary>
    /// ASP.NET's own host settings, which its command-line configuration takes too (<c>--urls</c>,
    /// <c>--environment</c>, …). Configuration paths with a colon (<c>--Kestrel:Endpoints:…</c>,
    /// <c>--Logging:LogLevel:Default</c>, <c>--ParamDb:Memory</c>) pass as well. ASP.NET's <c>AllowedHosts</c> is left
    /// out on purpose: its filter answers a foreign host with an empty 400, and <c>--AllowedHosts</c> is most likely a
    /// typo of <c>--allowed-hosts</c>, which the message then names.
    /// </summary>
    private static readonly string[] HostSettings =
    [
        "urls", "environment", "contentRoot", "applicationName", "webroot", "http_ports", "https_ports",
        "preventHostingStartup", "hostingStartupAssemblies", "hostingStartupExcludeAssemblies", "detailedErrors",
        "captureStartupErrors", "shutdownTimeoutSeconds", "suppressStatusMessages", "startupAssembly",
        "preferHostingUrls",
    ];

    /// <summary>Whether <paramref name="args"/> ask for stack traces (<see cref="Verbose"/>).</summary>
    public static bool IsVerbose(IEnumerable<string> args) => args.Contains(Verbose, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Checks the node's command line and returns what configuration reads: <paramref name="args"/> without the
    /// program's flags (a flag left in would take the next argument as its value). ASP.NET's command-line
    /// configuration keeps any <c>--name value</c> it is given, so without this check a mistyped switch
    /// (<c>--durabilty fsync</c>) would be ignored and the node would start with the default.
    /// </summary>
    /// <remarks>The forms are ASP.NET's: <c>--name value</c>, <c>--name=value</c>, <c>/name value</c>, <c>name=value</c>.</remarks>
    /// <exception cref="OptionsException">An unknown switch or argument (the message names the closest known one), or a switch without its value.</exception>
    public static string[] Check(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var configuration = new List<string>(args.Count);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (Flags.Contains(arg, StringComparer.OrdinalIgnoreCase)) continue;
            configuration.Add(arg);
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            string name = equals < 0 ? arg : arg[..equals];
            if (name.StartsWith("--", StringComparison.Ordinal))
            {
                if (!IsKnownSwitch(name)) throw Unknown(name);
            }
            else if (name.StartsWith('/') && name.Length > 1)
            {
                if (!IsKnownSwitch("--" + name[1..])) throw Unknown(name);
            }
            else if (name.StartsWith('-') && name.Length > 1)
            {
                throw Unknown(name);   // ASP.NET takes a one-dash switch only through a mapping; ours have two dashes
            }
            else if (equals < 0 || !IsKnownSetting(name))
            {
                throw equals < 0 ? Unexpected(arg) : Unknown(name);
            }
            if (equals >= 0) continue;
            if (i + 1 == args.Count) throw new OptionsException($"{name} needs a value.");
            configuration.Add(args[++i]);
        }
        return [.. configuration];
    }

    private static bool IsKnownSwitch(string name) =>
        SwitchMappings.Keys.Contains(name, StringComparer.OrdinalIgnoreCase) || IsKnownSetting(name[2..]);

    private static bool IsKnownSetting(string key) =>
        HostSettings.Contains(key, StringComparer.OrdinalIgnoreCase) || (key.Length > 1 && key.Contains(':', StringComparison.Ordinal));

    private static OptionsException Unknown(string name)
    {
        string? closest = ClosestName.Find(name, [.. SwitchMappings.Keys, .. Flags, .. HostSettings.Select(h => "--" + h)]);
        return new OptionsException(closest is null
            ? $"unknown option {name}; paramdb --help lists the options."
            : $"unknown option {name}; did you mean {closest}?");
    }

    private static OptionsException Unexpected(string arg)
    {
        string? command = ClosestName.Find(arg, Cli.Commands.All.Select(c => c.Words[0]).Distinct());
        return new OptionsException(command is null
            ? $"unexpected argument '{arg}'; a node takes only --options (paramdb --help lists them)."
            : $"unexpected argument '{arg}'; did you mean the command {command}?");
    }

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
          --allowed-hosts H1,H2      Host names answered besides loopback ones; * = any (default: loopback
                                     names only when every listen address is loopback, else any)
          --verbose                  a start-up failure prints its stack trace, not only its message
          -h, --help                 this text

        A cluster (docs/cluster.md); with none of these, and no cluster.json in --data, the node runs alone:
          --node-id ID               the node's name, kept in --data after the first start (default host name)
          --raft HOST:PORT           the server manager's Raft endpoint (default 127.0.0.1:7422)
          --cluster-init             first start of the first node: found a new cluster
          --join HOST:PORT           first start of any other node: the HTTP address of any member
          --replicas R               copies of each range, fixed at init (default 2)
          --vnodes V                 ring tokens per node, fixed at init (default 64)
          --cluster-secret S         secret the nodes prove to each other; required off loopback
          --down-after MS            a node silent this long is declared down (default 1000, 300 to 60000);
                                     it holds a lease of half this, renewed every eighth
          --resync-rate MIB          MiB/s a primary sends a returning node its ranges at, beside
                                     the pushes (default 128; 0 = no limit)

        An unknown switch stops the start (exit code 2) naming the closest known one. ASP.NET's own
        settings pass through: --urls, --environment, --Kestrel:Endpoints:NAME:Url=URL (an extra
        listener, named in the "listening on" log line), --Logging:LogLevel:Default=Debug, …

        Every option can also be set as configuration (section ParamDb in appsettings.json)
        or as an environment variable: ParamDb__Data, ParamDb__Listen, ParamDb__Memory, …
        """;
}
