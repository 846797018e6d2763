using System.Text;

namespace ParamDb.Server.Cli;

/// <summary>
/// The <c>paramdb</c> commands that talk to a running node, and their dispatcher. <c>paramdb</c> with no command
/// word runs a node; <c>paramdb import …</c> runs <see cref="ImportCommand"/> against one.
/// </summary>
/// <remarks>
/// To add a command (e.g. <c>paramdb snapshot create NAME</c>): write a <see cref="CliCommand"/> subclass whose
/// <see cref="CliCommand.Words"/> are <c>["snapshot", "create"]</c> and list it in <see cref="All"/>. Commands that
/// share a first word form a group: <c>paramdb snapshot</c> alone, or with an unknown second word, lists the
/// group's commands and exits 2. A download takes a <see cref="ProgressBar"/> with or without a known total and
/// copies through <see cref="ProgressBar.CopyAsync"/>, as the import's upload does.
/// </remarks>
public static class Commands
{
    /// <summary>Every command, in the order <c>--help</c> lists them.</summary>
    public static IReadOnlyList<CliCommand> All { get; } =
    [
        new ImportCommand(),
        new SnapshotCreateCommand(),
        new SnapshotListCommand(),
        new SnapshotRestoreCommand(),
        new SnapshotDeleteCommand(),
        new SnapshotExportCommand(),
        new RecoverCommand(),
        new ClusterStatusCommand(),
    ];

    /// <summary>Whether <paramref name="args"/> name a command (its first word is one), rather than node options.</summary>
    public static bool IsCommand(string[] args) => args.Length > 0 && Group(args[0]).Count > 0;

    /// <summary>The commands section of <c>paramdb --help</c>.</summary>
    public static string Overview
    {
        get
        {
            var text = new StringBuilder("Commands, against a running node (--url, default ").Append(CliArguments.DefaultUrl).AppendLine("):").AppendLine();
            foreach (CliCommand command in All)
                text.Append("  paramdb ").Append(Line(command)).AppendLine(" [--url URL]")
                    .Append("      ").AppendLine(command.Summary);
            text.AppendLine().Append("Run paramdb COMMAND --help for a command's arguments. Exit codes: 0 done, 1 the node refused or could not be reached, 2 a usage error.");
            return text.ToString();
        }
    }

    /// <summary>Runs the command <paramref name="args"/> name and returns the exit code (see <see cref="CliCommand"/>).</summary>
    /// <param name="args">The whole command line, starting with the command's words.</param>
    /// <param name="console">Where output goes.</param>
    /// <param name="cancellationToken">Ctrl-C.</param>
    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        CliCommand? command = Find(args);
        if (command is null)
        {
            string group = args.Length > 0 ? args[0] : "";
            await console.Error.WriteLineAsync(args.Length > 1 && !args[1].StartsWith('-')
                ? $"paramdb {group}: unknown command '{args[1]}'."
                : $"paramdb {group}: name a command.");
            foreach (CliCommand c in Group(group)) await console.Error.WriteLineAsync($"  paramdb {Line(c)}");
            return 2;
        }
        try
        {
            CliArguments arguments = CliArguments.Parse(args.AsSpan(command.Words.Count), command.ValueOptions, command.Flags);
            if (arguments.Help)
            {
                await console.Out.WriteLineAsync(UsageOf(command) + Environment.NewLine + command.Details);
                return 0;
            }
            return await command.RunAsync(arguments, console, cancellationToken);
        }
        catch (UsageException e)
        {
            await console.Error.WriteLineAsync($"paramdb {command.Name}: {e.Message}");
            await console.Error.WriteLineAsync(UsageOf(command));
            return 2;
        }
        catch (HttpRequestException e)
        {
            await console.Error.WriteLineAsync($"paramdb {command.Name}: could not reach the node: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await console.Error.WriteLineAsync($"paramdb {command.Name}: cancelled.");
            return 1;
        }
    }

    private static string UsageOf(CliCommand command) => $"Usage: paramdb {Line(command)} [--url URL]";

    /// <summary>The command's words and its synopsis, if it has one.</summary>
    private static string Line(CliCommand command) => command.Synopsis.Length == 0 ? command.Name : $"{command.Name} {command.Synopsis}";

    /// <summary>The command whose words start <paramref name="args"/>; the one with the most words when several do.</summary>
    private static CliCommand? Find(string[] args)
    {
        CliCommand? found = null;
        foreach (CliCommand command in All)
        {
            IReadOnlyList<string> words = command.Words;
            if (words.Count > args.Length || (found is not null && found.Words.Count >= words.Count)) continue;
            bool match = true;
            for (int i = 0; i < words.Count && match; i++) match = args[i] == words[i];
            if (match) found = command;
        }
        return found;
    }

    private static List<CliCommand> Group(string firstWord)
    {
        var group = new List<CliCommand>();
        foreach (CliCommand command in All)
            if (command.Words[0] == firstWord) group.Add(command);
        return group;
    }
}
