namespace ParamDb.Server.Options;

/// <summary>
/// "Did you mean": the known name nearest to a mistyped one, by edit distance, so a typo in a switch is answered
/// with the switch that was meant rather than only with "unknown".
/// </summary>
public static class ClosestName
{
    /// <summary>
    /// The name in <paramref name="known"/> closest to <paramref name="typed"/>, or null when none is close enough
    /// to be a typo of it. Leading dashes and case are ignored: <c>--Durabilty</c> finds <c>--durability</c>.
    /// </summary>
    public static string? Find(string typed, IEnumerable<string> known)
    {
        ArgumentNullException.ThrowIfNull(typed);
        ArgumentNullException.ThrowIfNull(known);
        string word = typed.TrimStart('-', '/').ToLowerInvariant();
        if (word.Length == 0) return null;
        // A third of the word may be wrong (two edits at least, for short words), but never all of it:
        // "--x" is not a typo of "-h".
        int allowed = Math.Max(2, word.Length / 3);
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string name in known)
        {
            int distance = Distance(word, name.TrimStart('-').ToLowerInvariant());
            if (distance < bestDistance && distance <= allowed && distance < word.Length)
            {
                best = name;
                bestDistance = distance;
            }
        }
        return best;
    }

    /// <summary>
    /// Edits (insert, delete, substitute, swap two neighbours) turning <paramref name="a"/> into <paramref name="b"/>:
    /// the optimal-string-alignment distance, so "memroy" is one edit from "memory", as a person counts it.
    /// </summary>
    public static int Distance(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                int best = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) best = Math.Min(best, d[i - 2, j - 2] + 1);
                d[i, j] = best;
            }
        }
        return d[a.Length, b.Length];
    }
}
