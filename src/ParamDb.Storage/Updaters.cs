using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// An <see cref="UpdaterSpec"/> compiled to float fields: folds a pushed row g into a stored payload
/// (see <see cref="RowLayout"/>) in place. Called from FASTER's RMW callbacks, under the record's lock.
/// Vector arithmetic is <see cref="TensorPrimitives"/> (SIMD); no allocation per row.
/// </summary>
internal readonly struct RowUpdater
{
    private enum Kind : byte { Assign, Add, Sgd, Adagrad, Adam }

    private readonly Kind _kind;
    private readonly float _lr, _beta1, _beta2, _eps, _initialAccumulator;
    private readonly double _beta1Exact, _beta2Exact;   // for β^t: (double)0.9f is 0.89999998

    private RowUpdater(Kind kind, double lr = 0, double beta1 = 0, double beta2 = 0, double eps = 0, double initialAccumulator = 0)
    {
        _kind = kind;
        _lr = (float)lr;
        _beta1 = (float)beta1;
        _beta2 = (float)beta2;
        _eps = (float)eps;
        _initialAccumulator = (float)initialAccumulator;
        _beta1Exact = beta1;
        _beta2Exact = beta2;
    }

    public static RowUpdater From(UpdaterSpec spec) => spec.Kind switch
    {
        UpdaterSpec.Assign => new(Kind.Assign),
        UpdaterSpec.Add => new(Kind.Add),
        UpdaterSpec.Sgd => new(Kind.Sgd, lr: spec.Lr ?? 0),
        UpdaterSpec.Adagrad => new(Kind.Adagrad, lr: spec.Lr ?? 0, eps: spec.Eps ?? 1e-10, initialAccumulator: spec.InitialAccumulator ?? 0),
        UpdaterSpec.Adam => new(Kind.Adam, lr: spec.Lr ?? 0, beta1: spec.Beta1 ?? 0.9, beta2: spec.Beta2 ?? 0.999, eps: spec.Eps ?? 1e-8),
        _ => throw new ArgumentException($"Unknown updater kind \"{spec.Kind}\".", nameof(spec)),
    };

    /// <summary>The stored layout this updater needs for rows of <paramref name="dim"/> floats.</summary>
    public RowLayout LayoutFor(int dim) => _kind switch
    {
        Kind.Adagrad => new RowLayout(dim, 1, hasStep: false),
        Kind.Adam => new RowLayout(dim, 2, hasStep: true),
        _ => new RowLayout(dim, 0, hasStep: false),
    };

    /// <summary>Sets the optimizer state of a new row: a = initialAccumulator; m = v = 0, t = 0.</summary>
    public void InitState(Span<byte> payload, int dim)
    {
        Span<float> floats = MemoryMarshal.Cast<byte, float>(payload);
        switch (_kind)
        {
            case Kind.Adagrad:
                floats.Slice(dim, dim).Fill(_initialAccumulator);
                break;
            case Kind.Adam:
                payload.Slice(dim * sizeof(float)).Clear();
                break;
        }
    }

    /// <summary>Applies one pushed row <paramref name="g"/> (dim floats) to <paramref name="payload"/>.</summary>
    public void Apply(Span<byte> payload, ReadOnlySpan<float> g)
    {
        int dim = g.Length;
        Span<float> floats = MemoryMarshal.Cast<byte, float>(payload);
        Span<float> w = floats.Slice(0, dim);
        switch (_kind)
        {
            case Kind.Assign:
                g.CopyTo(w);
                break;
            case Kind.Add:
                TensorPrimitives.Add(w, g, w);
                break;
            case Kind.Sgd:
                TensorPrimitives.MultiplyAdd(g, -_lr, w, w);                 // w -= lr·g
                break;
            case Kind.Adagrad:
                ApplyAdagrad(w, floats.Slice(dim, dim), g);
                break;
            default:
                ApplyAdam(w, floats.Slice(dim, dim), floats.Slice(2 * dim, dim),
                    ref MemoryMarshal.Cast<byte, int>(payload.Slice(3 * dim * sizeof(float), sizeof(int)))[0], g);
                break;
        }
    }

    private void ApplyAdagrad(Span<float> w, Span<float> a, ReadOnlySpan<float> g)
    {
        Span<float> s = Scratch(g.Length);
        TensorPrimitives.Multiply(g, g, s);
        TensorPrimitives.Add(a, s, a);                                        // a += g²
        TensorPrimitives.Sqrt(a, s);
        TensorPrimitives.Add(s, _eps, s);
        TensorPrimitives.Divide(g, s, s);                                     // g / (√a + eps)
        TensorPrimitives.MultiplyAdd(s, -_lr, w, w);                           // w -= lr·…
    }

    private void ApplyAdam(Span<float> w, Span<float> m, Span<float> v, ref int t, ReadOnlySpan<float> g)
    {
        t++;
        Span<float> s = Scratch(g.Length);
        TensorPrimitives.Multiply(m, _beta1, m);
        TensorPrimitives.MultiplyAdd(g, 1f - _beta1, m, m);                   // m = β1·m + (1-β1)·g
        TensorPrimitives.Multiply(g, g, s);
        TensorPrimitives.Multiply(v, _beta2, v);
        TensorPrimitives.MultiplyAdd(s, 1f - _beta2, v, v);                   // v = β2·v + (1-β2)·g²
        // Bias corrections in double: β^t underflows gracefully, and 1-β2^t for t = 1 is 1e-3, where float
        // would keep only ~4 significant digits of β2 = 0.999.
        double c1 = 1 - Math.Pow(_beta1Exact, t), c2 = 1 - Math.Pow(_beta2Exact, t);
        TensorPrimitives.Multiply(v, (float)(1 / c2), s);                     // v̂
        TensorPrimitives.Sqrt(s, s);
        TensorPrimitives.Add(s, _eps, s);
        TensorPrimitives.Divide(m, s, s);                                     // m / (√v̂ + eps)
        TensorPrimitives.MultiplyAdd(s, (float)(-_lr / c1), w, w);             // w -= lr·m̂/(√v̂ + eps)
    }

    [ThreadStatic] private static float[]? _scratch;

    /// <summary>
    /// Per-thread scratch of at least <paramref name="length"/> floats (≤ 65,536 = 256 KiB, too big for the stack).
    /// FASTER runs the callbacks on the thread that owns the session, so a thread-static buffer is never shared.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Span<float> Scratch(int length)
    {
        float[]? buffer = _scratch;
        if (buffer is null || buffer.Length < length) _scratch = buffer = new float[Math.Max(length, 64)];
        return buffer.AsSpan(0, length);
    }
}
