using System.Globalization;

namespace ParamDb.Server.Options;

/// <summary>Parses the human units of the options: sizes (<c>64m</c>) and durations (<c>60s</c>).</summary>
public static class Units
{
    /// <summary>Parses a byte size: a number with an optional k, m, g or t suffix (powers of 1024), optionally followed by b.</summary>
    public static bool TryParseSize(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim().ToLowerInvariant();
        if (s.EndsWith("ib", StringComparison.Ordinal)) s = s[..^2];
        else if (s.Length > 1 && s.EndsWith('b')) s = s[..^1];
        int shift = s[^1] switch { 'k' => 10, 'm' => 20, 'g' => 30, 't' => 40, _ => 0 };
        if (shift != 0) s = s[..^1];
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || !(n >= 0)) return false;
        double value = n * Math.Pow(2, shift);
        if (value > long.MaxValue) return false;
        bytes = (long)value;
        return true;
    }

    /// <summary>Parses a duration: <c>250ms</c>, <c>60s</c>, <c>5m</c>, <c>1h</c>, a bare number of seconds, or <c>hh:mm:ss</c>.</summary>
    public static bool TryParseDuration(string? text, out TimeSpan duration)
    {
        duration = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim().ToLowerInvariant();
        if (s.Contains(':')) return TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out duration) && duration >= TimeSpan.Zero;
        double scale = 1;
        if (s.EndsWith("ms", StringComparison.Ordinal)) { scale = 0.001; s = s[..^2]; }
        else if (s.EndsWith('s')) s = s[..^1];
        else if (s.EndsWith('m')) { scale = 60; s = s[..^1]; }
        else if (s.EndsWith('h')) { scale = 3600; s = s[..^1]; }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || !(n >= 0)) return false;
        duration = TimeSpan.FromSeconds(n * scale);
        return true;
    }
}
