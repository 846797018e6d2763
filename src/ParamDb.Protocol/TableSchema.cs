using System.Text.Json.Serialization;

namespace ParamDb.Protocol;

/// <summary>
/// The schema of a table: row width, initializer, updater, an optional key bound, and whether values may be
/// NaN or ±Infinity.
/// <code>{ "dim": 64, "init": { "kind": "normal", "std": 0.01, "seed": 7 }, "updater": { "kind": "adam", "lr": 0.001 } }</code>
/// </summary>
public sealed record TableSchema
{
    /// <summary>Largest accepted <see cref="Dim"/>.</summary>
    public const int MaxDim = 65_536;

    /// <summary>Floats per row, 1 … 65,536.</summary>
    public int Dim { get; init; }

    /// <summary>Initial value of rows never pushed; zeros when absent.</summary>
    public InitializerSpec? Init { get; init; }

    /// <summary>How pushes fold into rows; <c>add</c> when absent.</summary>
    public UpdaterSpec? Updater { get; init; }

    /// <summary>When set, keys ≥ MaxKey are rejected (a dense table's size).</summary>
    public ulong? MaxKey { get; init; }

    /// <summary>
    /// When true, pushes and imports may store NaN and ±Infinity; when false (the default, and what a schema
    /// without the field means) they are refused with <c>non_finite_value</c>. Part of the schema's identity.
    /// Left out of the JSON when false, so schemas, catalogs and exports written before the field existed read
    /// back, and write, the same bytes.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool AllowNonFinite { get; init; }

    /// <summary>
    /// Validates the schema and returns it with every default filled in, so two requests that mean the
    /// same table compare equal.
    /// </summary>
    public bool TryNormalize(out TableSchema normalized, out ProtocolError error)
    {
        normalized = this;
        if (Dim is < 1 or > MaxDim)
            return Fail(out error, $"dim must be 1…{MaxDim}; got {Dim}.");
        if (!(Init ?? new InitializerSpec { Kind = InitializerSpec.Zeros }).TryNormalize(out var init, out error)) return false;
        if (!(Updater ?? new UpdaterSpec { Kind = UpdaterSpec.Add }).TryNormalize(out var updater, out error)) return false;
        if (MaxKey == 0)
            return Fail(out error, "maxKey must be at least 1 (it is the exclusive upper bound of keys), or null.");
        normalized = this with { Init = init, Updater = updater };
        return true;
    }

    internal static bool Fail(out ProtocolError error, string detail)
    {
        error = new ProtocolError(400, ProblemCodes.InvalidSchema, detail);
        return false;
    }
}

/// <summary>
/// Initial value of element j of row k: a pure function of (seed, k, j), so every node and every restart
/// produce the same value. Kinds: <c>zeros</c>, <c>constant{value}</c>, <c>uniform{low,high,seed}</c>,
/// <c>normal{mean,std,seed}</c>.
/// </summary>
public sealed record InitializerSpec
{
    /// <summary>Kind name.</summary>
    public const string Zeros = "zeros", Constant = "constant", Uniform = "uniform", Normal = "normal";

    /// <summary>One of zeros, constant, uniform, normal.</summary>
    public string Kind { get; init; } = Zeros;
    /// <summary>constant: the value.</summary>
    public double? Value { get; init; }
    /// <summary>uniform: inclusive lower bound (default 0).</summary>
    public double? Low { get; init; }
    /// <summary>uniform: exclusive upper bound (default 1).</summary>
    public double? High { get; init; }
    /// <summary>normal: mean (default 0).</summary>
    public double? Mean { get; init; }
    /// <summary>normal: standard deviation (default 1).</summary>
    public double? Std { get; init; }
    /// <summary>uniform, normal: the RNG seed (default 0).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Validates and fills defaults; fields that do not belong to the kind are dropped.</summary>
    public bool TryNormalize(out InitializerSpec normalized, out ProtocolError error)
    {
        normalized = this;
        switch (Kind)
        {
            case Zeros:
                normalized = new InitializerSpec { Kind = Zeros };
                break;
            case Constant:
                if (Value is not { } v || !double.IsFinite(v)) return TableSchema.Fail(out error, "init.kind constant needs a finite init.value.");
                normalized = new InitializerSpec { Kind = Constant, Value = v };
                break;
            case Uniform:
                double low = Low ?? 0, high = High ?? 1;
                if (!double.IsFinite(low) || !double.IsFinite(high) || !(low < high))
                    return TableSchema.Fail(out error, $"init.kind uniform needs finite low < high; got low {low}, high {high}.");
                normalized = new InitializerSpec { Kind = Uniform, Low = low, High = high, Seed = Seed ?? 0 };
                break;
            case Normal:
                double mean = Mean ?? 0, std = Std ?? 1;
                if (!double.IsFinite(mean) || !double.IsFinite(std) || std < 0)
                    return TableSchema.Fail(out error, $"init.kind normal needs a finite mean and std ≥ 0; got mean {mean}, std {std}.");
                normalized = new InitializerSpec { Kind = Normal, Mean = mean, Std = std, Seed = Seed ?? 0 };
                break;
            default:
                return TableSchema.Fail(out error, $"init.kind must be zeros, constant, uniform or normal; got \"{Kind}\".");
        }
        error = default;
        return true;
    }
}

/// <summary>
/// How a pushed row g folds into the stored row w. Kinds: <c>assign</c> (w = g), <c>add</c> (w += g),
/// <c>sgd{lr}</c>, <c>adagrad{lr, eps, initialAccumulator}</c>, <c>adam{lr, beta1, beta2, eps}</c>.
/// </summary>
public sealed record UpdaterSpec
{
    /// <summary>Kind name.</summary>
    public const string Assign = "assign", Add = "add", Sgd = "sgd", Adagrad = "adagrad", Adam = "adam";

    /// <summary>One of assign, add, sgd, adagrad, adam.</summary>
    public string Kind { get; init; } = Add;
    /// <summary>Learning rate (sgd, adagrad, adam), &gt; 0.</summary>
    public double? Lr { get; init; }
    /// <summary>adam: first-moment decay, default 0.9.</summary>
    public double? Beta1 { get; init; }
    /// <summary>adam: second-moment decay, default 0.999.</summary>
    public double? Beta2 { get; init; }
    /// <summary>adagrad (default 1e-10), adam (default 1e-8).</summary>
    public double? Eps { get; init; }
    /// <summary>adagrad: starting accumulator, default 0.</summary>
    [JsonPropertyName("initialAccumulator")]
    public double? InitialAccumulator { get; init; }

    /// <summary>Validates and fills defaults; fields that do not belong to the kind are dropped.</summary>
    public bool TryNormalize(out UpdaterSpec normalized, out ProtocolError error)
    {
        normalized = this;
        switch (Kind)
        {
            case Assign or Add:
                normalized = new UpdaterSpec { Kind = Kind };
                break;
            case Sgd:
                if (!PositiveLr(out error)) return false;
                normalized = new UpdaterSpec { Kind = Sgd, Lr = Lr };
                break;
            case Adagrad:
                if (!PositiveLr(out error)) return false;
                double eps = Eps ?? 1e-10, acc = InitialAccumulator ?? 0;
                if (!(eps > 0) || !double.IsFinite(eps) || !(acc >= 0) || !double.IsFinite(acc))
                    return TableSchema.Fail(out error, $"updater adagrad needs eps > 0 and initialAccumulator ≥ 0; got eps {eps}, initialAccumulator {acc}.");
                normalized = new UpdaterSpec { Kind = Adagrad, Lr = Lr, Eps = eps, InitialAccumulator = acc };
                break;
            case Adam:
                if (!PositiveLr(out error)) return false;
                double b1 = Beta1 ?? 0.9, b2 = Beta2 ?? 0.999, e = Eps ?? 1e-8;
                if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(e > 0) || !double.IsFinite(e))
                    return TableSchema.Fail(out error, $"updater adam needs 0 ≤ beta1, beta2 < 1 and eps > 0; got beta1 {b1}, beta2 {b2}, eps {e}.");
                normalized = new UpdaterSpec { Kind = Adam, Lr = Lr, Beta1 = b1, Beta2 = b2, Eps = e };
                break;
            default:
                return TableSchema.Fail(out error, $"updater.kind must be assign, add, sgd, adagrad or adam; got \"{Kind}\".");
        }
        error = default;
        return true;
    }

    private bool PositiveLr(out ProtocolError error)
    {
        if (Lr is { } lr && lr > 0 && double.IsFinite(lr))
        {
            error = default;
            return true;
        }
        return TableSchema.Fail(out error, $"updater {Kind} needs a learning rate lr > 0; got {(Lr?.ToString() ?? "none")}.");
    }
}
