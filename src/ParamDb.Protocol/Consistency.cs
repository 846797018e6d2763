using System.Globalization;

namespace ParamDb.Protocol;

/// <summary>
/// How fresh a pull must be (docs/consistency.md), as the staleness of the stream frame: -1 eventual (never waits),
/// 0 sequential (every live worker's pushes up to clock c-1 applied), τ &gt; 0 bounded delay (up to c-1-τ).
/// Written <c>eventual</c> | <c>sequential</c> | <c>bounded:τ</c> in the <c>ParamDb-Consistency</c> header.
/// </summary>
public readonly record struct Consistency
{
    /// <summary>Never waits.</summary>
    public static Consistency Eventual { get; } = new(-1);

    /// <summary>Waits for every live worker's clock c-1.</summary>
    public static Consistency Sequential { get; } = new(0);

    private Consistency(int staleness) => Staleness = staleness;

    /// <summary>-1 eventual, 0 sequential, τ &gt; 0 bounded delay.</summary>
    public int Staleness { get; }

    /// <summary>True for eventual consistency.</summary>
    public bool IsEventual => Staleness < 0;

    /// <summary>Bounded delay τ (τ = 0 is sequential).</summary>
    public static Consistency Bounded(int tau)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tau);
        return new(tau);
    }

    /// <summary>From the stream frame's staleness field; false for values below -1.</summary>
    public static bool TryFromStaleness(int staleness, out Consistency consistency)
    {
        consistency = staleness < -1 ? default : new(staleness);
        return staleness >= -1;
    }

    /// <summary>
    /// The clock every live worker must have reached for a pull at <paramref name="clock"/>: <c>c-1-τ</c>,
    /// or 0 (nothing to wait for) when eventual, when the pull carries no clock, or when the target is below 1.
    /// </summary>
    public ulong Target(ulong clock)
    {
        if (IsEventual || clock == 0) return 0;
        ulong behind = 1UL + (ulong)Staleness;
        return clock > behind ? clock - behind : 0;
    }

    /// <summary>Parses <c>eventual</c>, <c>sequential</c> or <c>bounded:τ</c> (τ ≥ 0; bounded:0 is sequential), case-insensitively.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out Consistency consistency)
    {
        consistency = Eventual;
        text = text.Trim();
        if (text.Equals("eventual", StringComparison.OrdinalIgnoreCase)) return true;
        if (text.Equals("sequential", StringComparison.OrdinalIgnoreCase))
        {
            consistency = Sequential;
            return true;
        }
        const string prefix = "bounded:";
        if (text.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            && int.TryParse(text[prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int tau))
        {
            consistency = new(tau);
            return true;
        }
        return false;
    }

    /// <summary>The header form.</summary>
    public override string ToString() => Staleness switch
    {
        < 0 => "eventual",
        0 => "sequential",
        _ => "bounded:" + Staleness.ToString(CultureInfo.InvariantCulture),
    };
}
