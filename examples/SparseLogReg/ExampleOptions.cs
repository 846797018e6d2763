using System.Globalization;
using ParamDb.Protocol;

namespace ParamDb.Examples.SparseLogReg;

/// <summary>The command line; every option has a default, so a bare <c>dotnet run</c> works against a default node.</summary>
internal sealed record ExampleOptions
{
    /// <summary>The text of <c>--help</c>.</summary>
    public const string Usage = """
        paramdb-sparse-logreg: data-parallel sparse logistic regression on a running ParamDb node, once per
        consistency mode, to measure what waiting for stragglers costs and what it buys.

          --url URL            REST address of the node (default http://127.0.0.1:7420)
          --stream-url URL     its HTTP/2 (h2c) address for the workers' streams (default: the one GET /v1/health reports)
          --iterations N       iterations per worker (default 50)
          --workers N          workers, each with its own shard and stream (default 4)
          --modes LIST         consistency modes to run, in order (default eventual,bounded:2,sequential)
          --batch N            examples per minibatch (default 500)
          --examples N         training examples per worker (default 25000: 50 iterations of 500 see each once)
          --features N         feature ids, the table's keys (default 200000)
          --compute-ms MS      simulated compute time of a normal iteration (default 50)
          --lr X               Adagrad learning rate of the table's updater (default 0.1)
          --seed N             seed of the data, the hidden weights and the straggler delays (default 42)
          --help               this text
        """;

    /// <summary>REST address: tables and the final held-out pull.</summary>
    public Uri Url { get; init; } = new("http://127.0.0.1:7420");

    /// <summary>h2c address for the workers; null asks the node.</summary>
    public Uri? StreamUrl { get; init; }

    /// <summary>Iterations per worker.</summary>
    public int Iterations { get; init; } = 50;

    /// <summary>Number of workers.</summary>
    public int Workers { get; init; } = 4;

    /// <summary>Consistency modes, run one after the other.</summary>
    public IReadOnlyList<Consistency> Modes { get; init; } = [Consistency.Eventual, Consistency.Bounded(2), Consistency.Sequential];

    /// <summary>Examples per minibatch.</summary>
    public int Batch { get; init; } = 500;

    /// <summary>Training examples per worker.</summary>
    public int Examples { get; init; } = 25_000;

    /// <summary>Number of feature ids.</summary>
    public int Features { get; init; } = 200_000;

    /// <summary>Simulated compute time of a normal iteration.</summary>
    public TimeSpan Compute { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Adagrad learning rate.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Seed of everything random.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Examples held out for the final loss; fixed, so results compare across runs.</summary>
    public int HeldOut => 5_000;

    /// <summary>True when <c>--help</c> was given.</summary>
    public bool Help { get; init; }

    /// <summary>Parses <paramref name="args"/>.</summary>
    /// <exception cref="ArgumentException">An unknown option, a missing or invalid value.</exception>
    public static ExampleOptions Parse(string[] args)
    {
        var o = new ExampleOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            o = arg switch
            {
                "--url" => o with { Url = new Uri(Next()) },
                "--stream-url" => o with { StreamUrl = new Uri(Next()) },
                "--iterations" => o with { Iterations = Positive(arg, Next()) },
                "--workers" => o with { Workers = Positive(arg, Next()) },
                "--modes" => o with { Modes = ParseModes(Next()) },
                "--batch" => o with { Batch = Positive(arg, Next()) },
                "--examples" => o with { Examples = Positive(arg, Next()) },
                "--features" => o with { Features = Positive(arg, Next()) },
                "--compute-ms" => o with { Compute = TimeSpan.FromMilliseconds(NonNegative(arg, Next())) },
                "--lr" => o with { LearningRate = PositiveNumber(arg, Next()) },
                "--seed" => o with { Seed = ulong.Parse(Next(), CultureInfo.InvariantCulture) },
                "--help" or "-h" => o with { Help = true },
                _ => throw new ArgumentException($"Unknown option {arg}; see --help."),
            };
        }
        return o;
    }

    private static Consistency[] ParseModes(string value)
    {
        string[] names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new ArgumentException("--modes needs at least one mode.");
        var modes = new Consistency[names.Length];
        for (int i = 0; i < names.Length; i++)
        {
            if (!Consistency.TryParse(names[i], out modes[i]))
                throw new ArgumentException($"--modes takes eventual, sequential or bounded:τ, not {names[i]}.");
        }
        return modes;
    }

    private static int Positive(string option, string value)
    {
        int n = int.Parse(value, CultureInfo.InvariantCulture);
        return n > 0 ? n : throw new ArgumentException($"{option} must be at least 1.");
    }

    private static double PositiveNumber(string option, string value)
    {
        double x = double.Parse(value, CultureInfo.InvariantCulture);
        return x > 0 && double.IsFinite(x) ? x : throw new ArgumentException($"{option} must be a number above 0.");
    }

    private static double NonNegative(string option, string value)
    {
        double x = double.Parse(value, CultureInfo.InvariantCulture);
        return x >= 0 && double.IsFinite(x) ? x : throw new ArgumentException($"{option} must be a number ≥ 0.");
    }
}
