using ParamDb.Protocol;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>
/// One table's rows per range of the store's ranges (docs/replication.md, "Row counts"): counted when a key's first
/// record is inserted, lowered when a range is dropped. A node's row count leaves out the ranges it holds for others
/// rather than serves, and a failover only flips which ranges are served; with counts per range that is a sum over
/// 192 or so ranges instead of a pass over the log. (FASTER's live-record iterator builds a temporary store sized
/// like the main one's index, ~0.3 s even for an almost empty log: that was most of a failover's time.)
/// </summary>
internal sealed class RangeRowCounts(Ring ring, long[] counts)
{
    private readonly long[] _counts = counts;

    /// <summary>Zero rows in every range of <paramref name="ring"/>.</summary>
    public RangeRowCounts(Ring ring) : this(ring, new long[ring.Count])
    {
    }

    /// <summary>The ranges the counts are by; only ranges with the same tokens keep them.</summary>
    public Ring Ring { get; } = ring;

    /// <summary>A new row at <paramref name="key"/>: a binary search over the tokens, once per key ever inserted.</summary>
    public void CountNew(ulong tableHash, ulong key) => Interlocked.Increment(ref _counts[Ring.RangeOf(tableHash, key)]);

    /// <summary>Rows removed from range <paramref name="range"/>.</summary>
    public void Remove(int range, long rows) => Interlocked.Add(ref _counts[range], -rows);

    /// <summary>The rows in ranges <paramref name="shape"/> does not serve: the copies this node holds for others.</summary>
    public long Held(RangeShape shape)
    {
        long held = 0;
        for (int i = 0; i < _counts.Length; i++)
            if (!shape.Serves(i)) held += Volatile.Read(ref _counts[i]);
        return held;
    }
}
