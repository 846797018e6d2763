namespace ParamDb.Protocol.Cluster;

/// <summary>
/// Chooses the tokens of a node that joins a ring, so that every node owns close to 1/N of it. The server
/// manager's leader runs it once per join and commits the tokens; everyone else reads them from the ring.
/// </summary>
/// <remarks>
/// <para>Why not a hash of (node id, i) for every node: with V random tokens a node's share of the ring varies by
/// √((N−1)/(NV+1)), 11 % at N = 5 and V = 64, and the largest node of five was 19 % over its fair share in our
/// measurement (docs/cluster.md). The first node keeps hashed tokens (<see cref="Ring.ForNode"/>): it owns the
/// whole ring whatever they are.</para>
/// <para>How: after the join each of N nodes should own 1/N. A node that owns more gives its excess; the joiner's
/// V tokens are shared among the givers in proportion to what each gives (largest remainders), and each giver's
/// share is cut from the start of its largest arcs, the same fraction of each. A token placed inside an arc
/// (a, b] at p gives the joiner (a, p] and leaves (p, b] to the giver, so every node keeps exactly V tokens and
/// V arcs, and only the cut parts move.</para>
/// </remarks>
public static class TokenAllocator
{
    /// <summary>Largest fraction of one arc a joiner takes, so the giver keeps a part and tokens stay distinct.</summary>
    private const double MaxCut = 0.95;

    /// <summary>The tokens for a node joining <paramref name="ring"/>, <paramref name="virtualNodes"/> of them.</summary>
    /// <param name="ring">The ring before the join (at least one node).</param>
    /// <param name="virtualNodes">V, the tokens the joiner gets.</param>
    public static Ring ForJoiner(ClusterRing ring, int virtualNodes)
    {
        ArgumentNullException.ThrowIfNull(ring);
        ArgumentOutOfRangeException.ThrowIfLessThan(virtualNodes, 1);
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        ReadOnlySpan<int> owners = ring.Owners;
        int nodes = ring.NodeCount, total = tokens.Length;

        // Arc i is (tokens[i-1], tokens[i]], owned by owners[i]; arc 0 wraps around from the last token.
        var arcs = new double[total];
        var share = new double[nodes];
        for (int i = 0; i < total; i++)
        {
            arcs[i] = ArcLength(tokens, i);
            share[owners[i]] += arcs[i];
        }
        double fair = 1.0 / (nodes + 1);
        var give = new double[nodes];
        double given = 0;
        for (int n = 0; n < nodes; n++) given += give[n] = Math.Max(0, share[n] - fair);
        // Σ max(0, share − fair) ≥ 1 − nodes·fair = fair; scale down to take exactly one fair share.
        for (int n = 0; n < nodes; n++) give[n] *= fair / given;

        int[] count = Apportion(give, virtualNodes);
        var chosen = new List<ulong>(virtualNodes);
        for (int n = 0; n < nodes; n++)
        {
            if (count[n] == 0) continue;
            // The giver's largest arcs, largest first (ties by position, so every leader picks the same).
            var mine = new List<int>();
            for (int i = 0; i < total; i++)
                if (owners[i] == n) mine.Add(i);
            mine.Sort((x, y) => arcs[y] != arcs[x] ? arcs[y].CompareTo(arcs[x]) : x.CompareTo(y));
            int take = Math.Min(count[n], mine.Count);
            double pool = 0;
            for (int j = 0; j < take; j++) pool += arcs[mine[j]];
            double cut = Math.Min(MaxCut, give[n] / pool);
            for (int j = 0; j < take; j++) chosen.Add(CutPoint(tokens, mine[j], cut));
            // A giver with fewer arcs than its count (only on tiny rings): the tokens left over go inside the part
            // cut from its largest arc, evenly, where they change no ownership (the joiner owns both sides).
            int left = count[n] - take;
            for (int k = 1; k <= left; k++) chosen.Add(CutPoint(tokens, mine[0], cut * k / (left + 1)));
        }
        return new Ring(chosen);
    }

    /// <summary>Arc i's length as a fraction of the ring.</summary>
    private static double ArcLength(ReadOnlySpan<ulong> tokens, int i)
    {
        ulong previous = tokens[i == 0 ? tokens.Length - 1 : i - 1];
        ulong length = unchecked(tokens[i] - previous);
        return tokens.Length == 1 ? 1.0 : length / 18446744073709551616.0;
    }

    /// <summary>The point <paramref name="fraction"/> of the way into arc i from its start, never at either end.</summary>
    private static ulong CutPoint(ReadOnlySpan<ulong> tokens, int i, double fraction)
    {
        ulong start = tokens[i == 0 ? tokens.Length - 1 : i - 1];
        ulong length = tokens.Length == 1 ? ulong.MaxValue : unchecked(tokens[i] - start);
        ulong offset = (ulong)Math.Clamp(length * fraction, 1, length - 1);
        return unchecked(start + offset);
    }

    /// <summary>Splits <paramref name="seats"/> in proportion to <paramref name="weights"/> (largest remainders, ties to the lower index).</summary>
    private static int[] Apportion(double[] weights, int seats)
    {
        double sum = 0;
        foreach (double w in weights) sum += w;
        var count = new int[weights.Length];
        var remainder = new double[weights.Length];
        int assigned = 0;
        for (int n = 0; n < weights.Length; n++)
        {
            double exact = seats * weights[n] / sum;
            count[n] = (int)Math.Floor(exact);
            remainder[n] = exact - count[n];
            assigned += count[n];
        }
        int[] order = [.. Enumerable.Range(0, weights.Length)];
        Array.Sort(order, (x, y) => remainder[y] != remainder[x] ? remainder[y].CompareTo(remainder[x]) : x.CompareTo(y));
        for (int k = 0; assigned < seats; k++, assigned++) count[order[k % order.Length]]++;
        return count;
    }
}
