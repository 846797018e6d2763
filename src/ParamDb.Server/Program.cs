using System.Reflection;
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

// A start-up failure is one line a person can act on; its stack trace is for --verbose (the host's own
// failures are also in the log, with theirs).
bool verbose = CommandLine.IsVerbose(args);
try
{
    // The build-time OpenAPI generator (dotnet-getdocument) loads this assembly into its own process and runs this
    // entry point with a server that does nothing; the hosted services would still start, and the store would
    // create ./paramdb-data in the source tree, the generator's working directory.
    bool generatingDocument = Assembly.GetEntryAssembly() != typeof(Program).Assembly;
    // Pushes wait for the store's push gate on a pool thread while a checkpoint starts (0.1-1.7 s measured under load
    // on 2 cores). With the pool's default minimum (one thread a core) every thread could be waiting there, and the
    // pool adds threads only about twice a second: the lease heartbeats a cluster node sends and answers queued
    // behind them for over a second, and the leader declared a live node down. Threads up to this minimum start at
    // once when work queues; none are made while the pool keeps up.
    ThreadPool.GetMinThreads(out int minWorkers, out int minIo);
    ThreadPool.SetMinThreads(Math.Max(minWorkers, 16 * Environment.ProcessorCount), minIo);
    var app = ParamDbApp.Build(args, openStore: !generatingDocument);
    await app.RunAsync();
    return 0;
}
catch (OptionsException e)
{
    Console.Error.WriteLine($"paramdb: {OneLine(e.Message)}");
    if (verbose) Console.Error.WriteLine(e);
    return 2;
}
catch (Exception e) when (e is not HostAbortedException)
{
    // HostAbortedException is how a host factory resolver (EF tools, older OpenAPI generators) stops the program
    // after Build(); let it pass.
    Console.Error.WriteLine($"paramdb: failed to start: {OneLine(e.Message)}");
    if (verbose) Console.Error.WriteLine(e);
    return 1;
}

static string OneLine(string message) => string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries));

/// <summary>The program's entry type, public so tests and the OpenAPI generator can find it.</summary>
public partial class Program;
