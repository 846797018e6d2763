namespace ParamDb.Storage.Versions;

/// <summary>
/// One worker's vector-clock entries on one table: <c>vc[range][worker]</c> for every range of the node, plus
/// their minimum and maximum so the common cases need no per-key range lookup. A push at clock c applies whole
/// when c &gt; <see cref="Max"/> and is skipped whole when c ≤ <see cref="Min"/>; only ranges at different
/// clocks (after a range moved in from another node) need each row's range.
/// </summary>
/// <remarks>Mutated only under <c>lock (this)</c>, which also serialises this worker's pushes to this table, so a
/// retry racing its original cannot apply twice. <see cref="Min"/> is read without the lock.</remarks>
internal sealed class WorkerClocks(int ranges)
{
    private ulong _min;

    /// <summary>Clock per range index of the node's ring.</summary>
    public ulong[] Ranges { get; private set; } = new ulong[ranges];

    /// <summary>Entry i becomes old entry <c>map[i]</c> (<see cref="TableClocks.Remap"/>); under this entry's lock.</summary>
    public void Remap(int[] map)
    {
        var next = new ulong[map.Length];
        for (int i = 0; i < map.Length; i++) next[i] = Ranges[map[i]];
        Ranges = next;
        Recompute();
    }

    /// <summary>The lowest clock over the ranges.</summary>
    public ulong Min => Volatile.Read(ref _min);

    /// <summary>The highest clock over the ranges.</summary>
    public ulong Max { get; private set; }

    /// <summary>Raises every range to at least <paramref name="clock"/>: a push to a node advances all its ranges of the table (docs/consistency.md).</summary>
    public void AdvanceAll(ulong clock)
    {
        ulong[] r = Ranges;
        for (int i = 0; i < r.Length; i++)
            if (r[i] < clock) r[i] = clock;
        Recompute();
    }

    /// <summary>Recomputes <see cref="Min"/> and <see cref="Max"/> after <see cref="Ranges"/> changed.</summary>
    public void Recompute()
    {
        ulong lo = ulong.MaxValue, hi = 0;
        foreach (ulong c in Ranges)
        {
            lo = Math.Min(lo, c);
            hi = Math.Max(hi, c);
        }
        Volatile.Write(ref _min, Ranges.Length == 0 ? 0 : lo);
        Max = hi;
    }
}
