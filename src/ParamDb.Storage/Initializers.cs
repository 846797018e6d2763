using System.Runtime.CompilerServices;
using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// Initial row values (docs/tables.md). Element <c>j</c> of row <c>k</c> is a pure function of
/// <c>(seed, k, j)</c>, so every node, restart and migration produces the same value without storing it.
/// </summary>
/// <remarks>
/// The RNG is counter-based: row <c>k</c> owns the SplitMix64 stream whose state starts at
/// <c>r = Mix64(Mix64(seed + γ·(s+1)) ^ k)</c>; element <c>j</c> of stream <c>s</c> is
/// <c>Mix64(r + γ·(j+1))</c> (γ = 0x9E3779B97F4A7C15), and its top 53 bits make a uniform double in [0, 1).
/// <c>uniform</c> uses stream 0; <c>normal</c> uses Box–Muller on streams 0 and 1 (the cosine half only, so each
/// element stays independent of its neighbours). The golden values in the tests pin this function: changing it
/// changes every table's never-pushed rows.
/// </remarks>
public static class Initializers
{
    /// <summary>Writes the initial value of row <paramref name="key"/> into <paramref name="row"/> (its length is the dim).</summary>
    /// <param name="spec">A normalized initializer (see <see cref="InitializerSpec.TryNormalize"/>).</param>
    /// <param name="key">The row's key.</param>
    /// <param name="row">Destination, one float per element.</param>
    /// <exception cref="ArgumentException">The spec's kind is unknown.</exception>
    public static void Fill(InitializerSpec spec, ulong key, Span<float> row) => RowInitializer.From(spec).Fill(key, row);
}

/// <summary>An <see cref="InitializerSpec"/> compiled to plain fields, kept on the <see cref="TableHandle"/>.</summary>
internal readonly struct RowInitializer
{
    private enum Kind : byte { Zeros, Constant, Uniform, Normal }

    private const double TwoPi = 2 * Math.PI;
    private const double Unit53 = 1.0 / (1UL << 53);

    private readonly Kind _kind;
    private readonly double _a;     // constant: value; uniform: low; normal: mean
    private readonly double _b;     // uniform: high; normal: std
    private readonly ulong _seed;

    private RowInitializer(Kind kind, double a, double b, ulong seed)
    {
        _kind = kind;
        _a = a;
        _b = b;
        _seed = seed;
    }

    public static RowInitializer From(InitializerSpec spec) => spec.Kind switch
    {
        InitializerSpec.Zeros => new(Kind.Zeros, 0, 0, 0),
        InitializerSpec.Constant => new(Kind.Constant, spec.Value ?? 0, 0, 0),
        InitializerSpec.Uniform => new(Kind.Uniform, spec.Low ?? 0, spec.High ?? 1, spec.Seed ?? 0),
        InitializerSpec.Normal => new(Kind.Normal, spec.Mean ?? 0, spec.Std ?? 1, spec.Seed ?? 0),
        _ => throw new ArgumentException($"Unknown initializer kind \"{spec.Kind}\".", nameof(spec)),
    };

    public void Fill(ulong key, Span<float> row)
    {
        switch (_kind)
        {
            case Kind.Zeros:
                row.Clear();
                break;
            case Kind.Constant:
                row.Fill((float)_a);
                break;
            case Kind.Uniform:
                FillUniform(RowState(_seed, 0, key), row);
                break;
            default:
                FillNormal(RowState(_seed, 0, key), RowState(_seed, 1, key), row);
                break;
        }
    }

    private void FillUniform(ulong state, Span<float> row)
    {
        double low = _a, width = _b - _a;
        for (int j = 0; j < row.Length; j++)
        {
            float f = (float)(low + width * Uniform(state, j));
            // Rounding to float can land on `high` (or just below `low`); step one ulp back inside [low, high).
            if (f >= _b) f = MathF.BitDecrement(f);
            else if (f < low) f = MathF.BitIncrement(f);
            row[j] = f;
        }
    }

    private void FillNormal(ulong state0, ulong state1, Span<float> row)
    {
        for (int j = 0; j < row.Length; j++)
        {
            double u1 = 1.0 - Uniform(state0, j);   // (0, 1]: log stays finite
            double u2 = Uniform(state1, j);
            double z = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(TwoPi * u2);
            row[j] = (float)(_a + _b * z);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong RowState(ulong seed, ulong stream, ulong key) =>
        Hashing.Mix64(Hashing.Mix64(seed + Hashing.Golden * (stream + 1)) ^ key);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Uniform(ulong rowState, int j) =>
        (Hashing.Mix64(rowState + Hashing.Golden * (ulong)(j + 1)) >> 11) * Unit53;
}
