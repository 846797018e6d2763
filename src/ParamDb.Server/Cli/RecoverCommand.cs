using Microsoft.Extensions.Logging.Abstractions;
using ParamDb.Server.Hosting;
using ParamDb.Server.Options;
using ParamDb.Storage;

namespace ParamDb.Server.Cli;

/// <summary>
/// <c>paramdb recover --data DIR [--accept-loss]</c>: opens a stopped node's data directory as a start would, and
/// says whether it recovers. A node refuses to start when its write-ahead log is damaged before its end with intact
/// records after the damage (acknowledged writes would be missing); with <c>--accept-loss</c> this command drops
/// the records from the damage on, after saying exactly which, moves the damaged bytes to <c>DATA/damaged/</c>,
/// and folds the result into a checkpoint, so the node then starts. The only command that works on files, not
/// against a running node: it takes the data directory's lock, so it cannot run beside the node.
/// </summary>
public sealed class RecoverCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["recover"];

    /// <inheritdoc />
    public override string Synopsis => "--data DIR [--accept-loss] [--memory SIZE] [--durability MODE]";

    /// <inheritdoc />
    public override string Summary => "With the node stopped: check that DIR recovers; with --accept-loss, drop what a damaged log cannot give back, and say what.";

    /// <inheritdoc />
    public override IReadOnlyList<string> ValueOptions { get; } = ["--data", "--memory", "--durability"];

    /// <inheritdoc />
    public override IReadOnlyList<string> Flags { get; } = ["--accept-loss"];

    /// <inheritdoc />
    public override string Details => """
          --data DIR        the stopped node's data directory (default ./paramdb-data)
          --accept-loss     when the write-ahead log is damaged with intact records after the damage, drop the
                            records from the damage on (they were acknowledged: this loses them), move the damaged
                            bytes to DIR/damaged/, and take a checkpoint, so the node starts again
          --memory SIZE     the node's memory budget, as when it runs (default 1g)
          --durability MODE the node's durability mode, as when it runs (default wal)
        Exit codes: 0 the directory recovers (after dropping what --accept-loss reported), 1 it does not, 2 usage.
        """;

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        if (arguments.Positional.Count > 0) throw new UsageException($"recover takes no positional arguments; got {string.Join(' ', arguments.Positional)}.");
        string data = Path.GetFullPath(arguments.Option("--data") ?? new ServerOptions().Data);
        if (!Directory.Exists(data)) throw new UsageException($"{data} does not exist.");
        long memory = 1L << 30;
        if (arguments.Option("--memory") is { } size && !Units.TryParseSize(size, out memory))
            throw new UsageException($"--memory takes a size such as 512m or 4g; got '{size}'.");
        DurabilityMode durability = DurabilityMode.Wal;
        if (arguments.Option("--durability") is { } mode && !Enum.TryParse(mode, ignoreCase: true, out durability))
            throw new UsageException($"--durability takes wal, fsync or checkpoint; got '{mode}'.");
        bool acceptLoss = arguments.Flag("--accept-loss");

        FileStream held;
        try
        {
            held = DataDirectoryLock.Acquire(data);
        }
        catch (InvalidOperationException e)
        {
            await console.Error.WriteLineAsync($"paramdb recover: {e.Message} Stop the node first.");
            return 1;
        }
        using var release = held;
        try
        {
            RecoveryReport report = await OfflineRecovery.RunAsync(new StoreOptions
            {
                DataDirectory = data,
                MemoryBytes = memory,
                Durability = durability,
                AcceptWalLoss = acceptLoss,
            }, cancellationToken);
            if (report.AcceptedLoss is { } loss)
            {
                await console.Error.WriteLineAsync($"paramdb recover: {loss}");
                await console.Out.WriteLineAsync($"{data} recovered without the dropped records, into a new checkpoint; the node can start.");
                return 0;
            }
            await console.Out.WriteLineAsync($"{data} recovers whole: {report.Tables} tables; nothing was dropped.");
            return 0;
        }
        catch (InvalidDataException e)
        {
            await console.Error.WriteLineAsync($"paramdb recover: {e.Message}");
            return 1;
        }
    }
}
