namespace ParamDb.Server.Cli;

/// <summary>
/// Where a command writes: results to <see cref="Out"/> (stdout, for scripts), progress and errors to
/// <see cref="Error"/> (stderr). Tests pass string writers to run a command in-process.
/// </summary>
/// <param name="Out">Results.</param>
/// <param name="Error">Progress bars, warnings and errors.</param>
/// <param name="ErrorIsTerminal">Whether <see cref="Error"/> is a terminal, so a progress bar may redraw in place.</param>
public sealed record CliConsole(TextWriter Out, TextWriter Error, bool ErrorIsTerminal)
{
    /// <summary>The process's stdout and stderr.</summary>
    public static CliConsole System => new(Console.Out, Console.Error, !Console.IsErrorRedirected);
}
