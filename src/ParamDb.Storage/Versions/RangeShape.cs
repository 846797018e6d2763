namespace ParamDb.Storage.Versions;

/// <summary>
/// How many ranges a store keeps clocks for, and which of them it serves: the ranges it is primary for, whose clocks
/// every clocked push to the node advances and whose minimum consistent pulls wait on. The others are copies it
/// holds for another node (a backup's), whose clocks move only with the records replicated to it. Immutable; the
/// store swaps it whole with its ranges.
/// </summary>
internal sealed class RangeShape
{
    private readonly bool[]? _served;   // null: every range is served (a single node, or a node before replication)

    public RangeShape(int count, bool[]? served = null)
    {
        if (served is not null && served.Length != count) throw new ArgumentException($"{served.Length} served flags for {count} ranges.", nameof(served));
        Count = count;
        _served = served is not null && Array.IndexOf(served, false) >= 0 ? served : null;
    }

    /// <summary>Ranges.</summary>
    public int Count { get; }

    /// <summary>Whether every range is served.</summary>
    public bool ServesAll => _served is null;

    /// <summary>Whether range <paramref name="range"/> is served.</summary>
    public bool Serves(int range) => _served is null || _served[range];
}
