using System.Globalization;
using ParamDb.Testing;

// paramdb-crash [--rounds N] [--workers N] [--seed N] [--durability wal|fsync] [--checkpoint-interval 300ms]
// Kills a real node with SIGKILL N times under a clocked push load and checks after every restart that no
// acknowledged push was lost and no retried one landed twice. Exit 0: every round held; 1: an invariant broke.
var options = new CrashOptions { KeepOnFailure = true };
for (int i = 0; i < args.Length; i++)
{
    string value = i + 1 < args.Length ? args[i + 1] : "";
    switch (args[i])
    {
        case "--rounds": options = options with { Rounds = int.Parse(value, CultureInfo.InvariantCulture) }; i++; break;
        case "--workers": options = options with { Workers = int.Parse(value, CultureInfo.InvariantCulture) }; i++; break;
        case "--seed": options = options with { Seed = int.Parse(value, CultureInfo.InvariantCulture) }; i++; break;
        case "--durability": options = options with { Durability = value }; i++; break;
        case "--checkpoint-interval": options = options with { CheckpointInterval = value }; i++; break;
        default:
            Console.Error.WriteLine($"unknown option {args[i]}; usage: paramdb-crash [--rounds N] [--workers N] [--seed N] [--durability wal|fsync] [--checkpoint-interval 300ms]");
            return 2;
    }
}
Console.WriteLine($"seed {options.Seed}, {options.Rounds} rounds, {options.Workers} workers, durability {options.Durability}, checkpoint interval {options.CheckpointInterval}");
try
{
    CrashReport report = await CrashHarness.RunAsync(options, Console.WriteLine);
    Console.WriteLine($"ok: {report.Rounds} kills, {report.Acknowledged} pushes acknowledged, {report.InFlight} cut off and retried ({report.RetriesSkipped} had been logged, {report.RetriesApplied} had not)");
    return 0;
}
catch (CrashInvariantException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
