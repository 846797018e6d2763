using ParamDb.Server;
using ParamDb.Server.Cli;
using ParamDb.Server.Options;

// `paramdb import …` and the other commands talk to a running node; without a command word, this is the node.
if (Commands.IsCommand(args))
{
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;   // end the command cleanly (its temporary state on the node is dropped with the request)
        cancel.Cancel();
    };
    return await Commands.RunAsync(args, CliConsole.System, cancel.Token);
}

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(CommandLine.Usage);
    Console.WriteLine();
    Console.WriteLine(Commands.Overview);
    return 0;
}

try
{
    var app = ParamDbApp.Build(args);
    await app.RunAsync();
    return 0;
}
catch (OptionsException e)
{
    Console.Error.WriteLine($"paramdb: {e.Message}");
    Console.Error.WriteLine("Run paramdb --help for the options.");
    return 2;
}
catch (Exception e) when (e is not HostAbortedException)
{
    // HostAbortedException is how the build-time OpenAPI generator stops the program after Build(); let it pass.
    Console.Error.WriteLine($"paramdb: failed to start: {e.Message}");
    return 1;
}

/// <summary>The program's entry type, public so tests and the OpenAPI generator can find it.</summary>
public partial class Program;
