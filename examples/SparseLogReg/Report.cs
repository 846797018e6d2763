using System.Globalization;
using ParamDb.Protocol;

namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// What the example prints: the setup, a line per mode as it finishes, then loss per iteration side by side and one
/// summary line per mode. Numbers use the invariant culture, so output compares across machines.
/// </summary>
internal static class Report
{
    private const int ModeWidth = 18;
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>The node, the data, the training settings and the straggler model, so a pasted output says what made it.</summary>
    public static void PrintSetup(ExampleOptions options, HealthReply health, Uri streamUrl, TrainingData data, TextWriter output)
    {
        output.WriteLine($"node {options.Url} (paramdb {health.Version}), workers stream to {streamUrl}; {Environment.ProcessorCount} cores");
        output.WriteLine(string.Create(Invariant,
            $"data: {options.Workers} × {options.Examples:N0} training examples, {options.HeldOut:N0} held out; {data.Problem.Features:N0} features " +
            $"(Zipf {SyntheticProblem.ZipfExponent}, the hottest in {data.Problem.TopKeyProbability:P0} of draws), " +
            $"{(double)data.Shards[0].ActiveFeatures / options.Examples:F1} active per example; made in {data.Generation.TotalSeconds:F1} s"));
        output.WriteLine(string.Create(Invariant,
            $"training: {options.Iterations} iterations × batch {options.Batch} per worker ({data.KeysPerBatch:N0} distinct keys in a batch), " +
            $"Adagrad lr {options.LearningRate}, seed {options.Seed}"));
        output.WriteLine(string.Create(Invariant,
            $"stragglers: compute {options.Compute.TotalMilliseconds:F0} ms ± 20 % per iteration, {StragglerModel.MinSlowdown}–{StragglerModel.MaxSlowdown}× " +
            $"slower with chance {StragglerModel.StraggleChance:P0} (worker {options.Workers - 1}: {StragglerModel.FlakyStraggleChance:P0})"));
        output.WriteLine(string.Create(Invariant, $"held-out log loss: {Math.Log(2):F4} at w = 0, {data.FloorLoss:F4} with the hidden weights"));
        output.WriteLine();
    }

    /// <summary>
    /// Two lines when a mode finishes, so a long run shows progress: the result, then when each worker finished and
    /// how long it "computed", which shows who set the pace.
    /// </summary>
    public static void PrintRun(ModeResult result, ExampleOptions options, TextWriter output)
    {
        output.WriteLine(string.Create(Invariant,
            $"{result.Mode,-12} {options.Iterations} iterations × {options.Workers} workers in {result.Wall.TotalSeconds:F2} s; " +
            $"held-out loss {result.HeldOutLoss:F4} (table {result.Table})"));
        output.Write($"{"",12} finished (compute) s:");
        foreach (var w in result.Workers)
            output.Write(string.Create(Invariant, $" w{w.Worker} {w.Finished.TotalSeconds:F2} ({w.Compute.TotalSeconds:F2})"));
        output.WriteLine();
    }

    /// <summary>
    /// Per iteration and mode: the mean minibatch loss, and when the last worker finished the iteration. Loss against
    /// iteration shows what staleness costs; the time column shows what waiting costs.
    /// </summary>
    public static void PrintIterations(IReadOnlyList<ModeResult> results, TextWriter output)
    {
        output.WriteLine("Loss per iteration: mean log loss of the workers' minibatches at the weights each pulled for it");
        output.WriteLine("(unseen examples while iterations × batch ≤ examples per worker); t: seconds until the last worker finished it.");
        output.Write($"{"iter",5}");
        foreach (var r in results) output.Write($"  {r.Mode,ModeWidth}");
        output.WriteLine();
        output.Write($"{"",5}");
        foreach (var _ in results) output.Write($"  {"loss",9}{"t s",ModeWidth - 9}");
        output.WriteLine();
        int iterations = results[0].Log.Iterations;
        for (int k = 1; k <= iterations; k++)
        {
            output.Write($"{k,5}");
            foreach (var r in results)
            {
                var row = r.Log[k];
                output.Write(string.Create(Invariant, $"  {row.MeanLoss,9:F4}{row.Done.TotalSeconds,ModeWidth - 9:F2}"));
            }
            output.WriteLine();
        }
    }

    /// <summary>One line per mode: wall time, held-out loss, time spent in pulls and how stale the pulls were.</summary>
    public static void PrintSummary(IReadOnlyList<ModeResult> results, TextWriter output)
    {
        output.WriteLine($"{"mode",-12} {"wall s",7} {"held-out loss",14} {"pull wait s",12} {"staleness mean",15} {"max",4}");
        foreach (var r in results)
        {
            output.WriteLine(string.Create(Invariant,
                $"{r.Mode,-12} {r.Wall.TotalSeconds,7:F2} {r.HeldOutLoss,14:F4} {r.PullWait.TotalSeconds,12:F2} {MeanStaleness(r),15:F2} {r.MaxStaleness,4}"));
        }
        output.WriteLine("pull wait: summed over workers; staleness: iterations of the slowest worker missing from a pull's weights.");
    }

    private static double MeanStaleness(ModeResult result)
    {
        double sum = 0;
        for (int k = 1; k <= result.Log.Iterations; k++) sum += result.Log[k].MeanStaleness;
        return sum / result.Log.Iterations;
    }
}
