namespace ParamDb.Protocol;

/// <summary>The rule for table (and snapshot) names: <c>[A-Za-z0-9_.-]{1,128}</c>, never "." or "..".</summary>
public static class TableNames
{
    /// <summary>Longest accepted name, in characters.</summary>
    public const int MaxLength = 128;

    /// <summary>True when <paramref name="name"/> may name a table.</summary>
    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.Length is 0 or > MaxLength) return false;
        // "." and ".." pass the character class but are path components; refuse them so a name is never a path.
        if (name is "." or "..") return false;
        foreach (char c in name)
        {
            bool ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '.' or '-';
            if (!ok) return false;
        }
        return true;
    }
}
