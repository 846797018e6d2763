using ParamDb.Client;
using ParamDb.Examples.SparseLogReg;

// Sparse logistic regression on synthetic data with several ParamDbWorkers, once per consistency mode: the trade-off
// of Li et al., OSDI 2014 (§4.1, bounded delay). See README.md.
ExampleOptions options;
try
{
    options = ExampleOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or UriFormatException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
if (options.Help)
{
    Console.WriteLine(ExampleOptions.Usage);
    return 0;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };

try
{
    using var db = new ParamDbClient(options.Url);
    var health = await db.HealthAsync(cancel.Token);
    Uri streamUrl = options.StreamUrl
        ?? (health.Http2 is { } h2 ? new Uri(h2) : throw new InvalidOperationException("The node reports no HTTP/2 address; pass --stream-url."));

    var data = TrainingData.Generate(options);
    var stragglers = new StragglerModel(options.Seed, options.Workers, options.Compute);
    Report.PrintSetup(options, health, streamUrl, data, Console.Out);

    var runner = new ModeRunner(options, db, streamUrl, data.Shards, data.HeldOut, stragglers);
    await runner.WarmUpAsync(cancel.Token);
    var results = new List<ModeResult>();
    foreach (var mode in options.Modes)
    {
        var result = await runner.RunAsync(mode, cancel.Token);
        results.Add(result);
        Report.PrintRun(result, options, Console.Out);
    }
    Console.WriteLine();
    Report.PrintIterations(results, Console.Out);
    Console.WriteLine();
    Report.PrintSummary(results, Console.Out);
    return 0;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    Console.Error.WriteLine("cancelled");
    return 130;
}
catch (Exception e) when (e is ParamDbException or HttpRequestException or IOException or TimeoutException or InvalidOperationException)
{
    Console.Error.WriteLine($"paramdb-sparse-logreg: {e.Message}");
    return 1;
}
