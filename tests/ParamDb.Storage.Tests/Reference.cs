namespace ParamDb.Storage.Tests;

/// <summary>The updaters of docs/tables.md written out plainly in double precision, to check the store against.</summary>
public sealed class ReferenceRow
{
    private readonly UpdaterSpec _updater;
    private readonly double[] _w, _a, _m, _v;
    private int _t;

    public ReferenceRow(UpdaterSpec updater, ReadOnlySpan<float> init)
    {
        _updater = updater;
        _w = new double[init.Length];
        for (int j = 0; j < _w.Length; j++) _w[j] = init[j];
        _a = new double[_w.Length];
        Array.Fill(_a, updater.InitialAccumulator ?? 0);
        _m = new double[_w.Length];
        _v = new double[_w.Length];
    }

    public IReadOnlyList<double> Values => _w;

    public void Push(ReadOnlySpan<float> g)
    {
        double lr = _updater.Lr ?? 0;
        if (_updater.Kind == UpdaterSpec.Adam) _t++;
        for (int j = 0; j < _w.Length; j++)
        {
            switch (_updater.Kind)
            {
                case UpdaterSpec.Assign: _w[j] = g[j]; break;
                case UpdaterSpec.Add: _w[j] += g[j]; break;
                case UpdaterSpec.Sgd: _w[j] -= lr * g[j]; break;
                case UpdaterSpec.Adagrad:
                    _a[j] += (double)g[j] * g[j];
                    _w[j] -= lr * g[j] / (Math.Sqrt(_a[j]) + _updater.Eps!.Value);
                    break;
                case UpdaterSpec.Adam:
                    double b1 = _updater.Beta1!.Value, b2 = _updater.Beta2!.Value;
                    _m[j] = b1 * _m[j] + (1 - b1) * g[j];
                    _v[j] = b2 * _v[j] + (1 - b2) * g[j] * g[j];
                    double mHat = _m[j] / (1 - Math.Pow(b1, _t)), vHat = _v[j] / (1 - Math.Pow(b2, _t));
                    _w[j] -= lr * mHat / (Math.Sqrt(vHat) + _updater.Eps!.Value);
                    break;
                default: throw new ArgumentException(_updater.Kind);
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
