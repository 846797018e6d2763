namespace ParamDb.Storage.Tests;

/// <summary>The updaters of docs/tables.md written out plainly in double precision, to check the store against.</summary>
public sealed class ReferenceRow
{
    private readonly UpdaterSpec updater;
    private readonly double[] w, a, m, v;
    private int t;

    public ReferenceRow(UpdaterSpec updater, ReadOnlySpan<float> init)
    {
        this.updater = updater;
        w = new double[init.Length];
        for (int j = 0; j < w.Length; j++) w[j] = init[j];
        a = new double[w.Length];
        Array.Fill(a, updater.InitialAccumulator ?? 0);
        m = new double[w.Length];
        v = new double[w.Length];
    }

    public IReadOnlyList<double> Values => w;

    public void Push(ReadOnlySpan<float> g)
    {
        double lr = updater.Lr ?? 0;
        if (updater.Kind == UpdaterSpec.Adam) t++;
        for (int j = 0; j < w.Length; j++)
        {
            switch (updater.Kind)
            {
                case UpdaterSpec.Assign: w[j] = g[j]; break;
                case UpdaterSpec.Add: w[j] += g[j]; break;
                case UpdaterSpec.Sgd: w[j] -= lr * g[j]; break;
                case UpdaterSpec.Adagrad:
                    a[j] += (double)g[j] * g[j];
                    w[j] -= lr * g[j] / (Math.Sqrt(a[j]) + updater.Eps!.Value);
                    break;
                case UpdaterSpec.Adam:
                    double b1 = updater.Beta1!.Value, b2 = updater.Beta2!.Value;
                    m[j] = b1 * m[j] + (1 - b1) * g[j];
                    v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
                    double mHat = m[j] / (1 - Math.Pow(b1, t)), vHat = v[j] / (1 - Math.Pow(b2, t));
                    w[j] -= lr * mHat / (Math.Sqrt(vHat) + updater.Eps!.Value);
                    break;
                default: throw new ArgumentException(updater.Kind);
            }
        }
    }

    /// <summary>Asserts float results match to 1e-5 relative (absolute below magnitude 1).</summary>
    public static void AssertClose(IReadOnlyList<double> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Count, actual.Length);
        for (int j = 0; j < actual.Length; j++)
        {
            double tolerance = 1e-5 * Math.Max(1, Math.Abs(expected[j]));
            Assert.True(Math.Abs(actual[j] - expected[j]) <= tolerance, $"{what}[{j}]: expected {expected[j]}, got {actual[j]}");
        }
    }

    /// <summary>A deterministic gradient in [-1, 1] for (key, step, element).</summary>
    public static float Gradient(ulong key, int step, int j) => (float)Math.Sin(key % 1000 * 0.37 + step * 1.3 + j * 0.71);
}
