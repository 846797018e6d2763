namespace ParamDb.Storage.Versions;

/// <summary>
/// One worker's vector-clock entries on one table: <c>vc[range][worker]</c> for every range of the node, plus
/// their minimum (over the served ranges) and maximum (over all) so the common cases need no per-key range lookup.
/// A push, whose keys all lie in served ranges, applies whole when c &gt; <see cref="Max"/> and is skipped whole
/// when c ≤ <see cref="Min"/>; only ranges at different clocks (after a range moved in from another node) need each
/// row's range.
/// </summary>
/// <remarks>Mutated only under <c>lock (this)</c>, which also serialises this worker's pushes to this table, so a
/// retry racing its original cannot apply twice. <see cref="Min"/> is read without the lock.</remarks>
internal sealed class WorkerClocks(TableClocks owner)
{
    private ulong _min;

    /// <summary>Clock per range index of the node's ring.</summary>
    public ulong[] Ranges { get; private set; } = new ulong[owner.Ranges];

    /// <summary>Entry i becomes old entry <c>map[i]</c> (<see cref="TableClocks.Remap"/>); under this entry's lock.</summary>
    public void Remap(int[] map)
    {
        var next = new ulong[map.Length];
        for (int i = 0; i < map.Length; i++) next[i] = Ranges[map[i]];
        Ranges = next;
        Recompute();
    }

    /// <summary>The lowest clock over the served ranges (0 when none is served): what consistent pulls wait on.</summary>
    public ulong Min => Volatile.Read(ref _min);

    /// <summary>The highest clock over all the ranges, served or held for another node.</summary>
    public ulong Max { get; private set; }

    /// <summary>
    /// Raises every served range to at least <paramref name="clock"/>: a push to a node advances all the ranges of
    /// the table it serves (docs/consistency.md). A range it holds for another node moves only with the records
    /// replicated to it, so a retry sent to it once it is promoted is skipped only if its effect is there.
    /// </summary>
    public void AdvanceAll(ulong clock)
    {
        ulong[] r = Ranges;
        RangeShape shape = owner.Shape;
        for (int i = 0; i < r.Length; i++)
            if (r[i] < clock && shape.Serves(i)) r[i] = clock;
        Recompute();
    }

    /// <summary>Recomputes <see cref="Min"/> and <see cref="Max"/> after <see cref="Ranges"/> or the served ranges changed.</summary>
    public void Recompute()
    {
        ulong lo = ulong.MaxValue, hi = 0;
        RangeShape shape = owner.Shape;
        ulong[] r = Ranges;
        for (int i = 0; i < r.Length; i++)
        {
            if (shape.Serves(i)) lo = Math.Min(lo, r[i]);
            hi = Math.Max(hi, r[i]);
        }
        Volatile.Write(ref _min, lo == ulong.MaxValue ? 0 : lo);
        Max = hi;
    }
}
