using ParamDb.Server;
using ParamDb.Server.Options;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(CommandLine.Usage);
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
