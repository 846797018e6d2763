namespace ParamDb.Server.Cli;

/// <summary>
/// One <c>paramdb</c> command that talks to a running node (<c>paramdb import …</c>), as opposed to running one.
/// A command is a small class listed once in <see cref="Commands.All"/>; the dispatcher finds it by its words,
/// parses its options (and the shared <c>--url</c>), prints its usage for <c>--help</c> and maps failures to exit
/// codes, so a command only does its own work.
/// </summary>
/// <remarks>
/// Exit codes, for every command: 0 done; 1 the node answered with a problem, or could not be reached; 2 a usage
/// error (missing or unknown argument, a file that cannot be read). Commands throw <see cref="UsageException"/>
/// for the last and return 1 through <see cref="CliHttp.FailAsync"/> for the first.
/// </remarks>
public abstract class CliCommand
{
    /// <summary>The words that name the command: <c>["import"]</c>, <c>["snapshot", "create"]</c>.</summary>
    public abstract IReadOnlyList<string> Words { get; }

    /// <summary>Its arguments after the words, for the usage line: <c>FILE --table T</c>. <c>[--url URL]</c> is added.</summary>
    public abstract string Synopsis { get; }

    /// <summary>One line saying what it does, for <c>paramdb --help</c>.</summary>
    public abstract string Summary { get; }

    /// <summary>Options that take a value (<c>--table</c>); <c>--url</c> and <c>--help</c> are every command's.</summary>
    public virtual IReadOnlyList<string> ValueOptions => [];

    /// <summary>Options that take no value (<c>--accept-loss</c>).</summary>
    public virtual IReadOnlyList<string> Flags => [];

    /// <summary>More lines for <c>paramdb COMMAND --help</c>: what each argument means.</summary>
    public virtual string Details => "";

    /// <summary>The command as typed: its words joined by spaces.</summary>
    public string Name => string.Join(' ', Words);

    /// <summary>Runs the command.</summary>
    /// <param name="arguments">The parsed arguments after the command's words.</param>
    /// <param name="console">Where results (stdout) and progress and errors (stderr) go.</param>
    /// <param name="cancellationToken">Ctrl-C.</param>
    /// <returns>The exit code: 0, or 1 for a problem the node answered (see <see cref="CliCommand"/>).</returns>
    /// <exception cref="UsageException">An argument is missing or unusable: exit code 2.</exception>
    public abstract Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken);
}
