using ParamDb.Protocol.Cluster;

namespace ParamDb.Protocol.Tests.Cluster;

/// <summary>
/// How evenly 100,000 keys spread over the nodes. Keys are uniform in [0, 2^40): 2^28 blocks of 4,096, so nearly
/// every key is a block of its own and placement noise is the ring's, not the sampling's.
/// <para>
/// What to expect. With V random tokens per node, a node's share of the ring is Beta(V, (N−1)V): relative standard
/// deviation √((N−1)/(NV+1)), 10.2 % for N = 3 and 11.2 % for N = 5 at V = 64. The worst of N nodes therefore
/// lands within ±15 % of 1/N for only part of all node-name sets: 68 % for N = 3 and 42 % for N = 5 (1,000 random
/// name sets simulated), 99 % and 97 % at V = 256. The hashes are not at fault: keys follow each node's exact arc
/// share to within sampling noise (<see cref="KeysFollowEachNodesArcShare"/>); it is the arcs that vary.
/// Measured by keys with this seed: node-a…node-c at V = 64 are at most 13.9 % off (node-b); node-a…node-e at
/// V = 64 are 19.0 % off (node-b), which is why N = 5 is asserted at V = 256 (9.7 %) and not at 64.
/// </para>
/// </summary>
public sealed class ClusterBalanceTests
{
    private const int Keys = 100_000;

    [Theory]
    [InlineData(3, 64)]
    [InlineData(3, 256)]
    [InlineData(5, 256)]
    public void KeysLandWithin15PercentOfAFairShare(int nodes, int virtualNodes)
    {
        int[] counts = CountKeys(new ClusterRing(0, 2, virtualNodes, ClusterRingTests.Names(nodes)));
        double fair = (double)Keys / nodes;
        foreach (int count in counts) Assert.InRange(count / fair - 1, -0.15, 0.15);
    }

    [Theory]
    [InlineData(3, 64)]
    [InlineData(5, 64)]
    public void KeysFollowEachNodesArcShare(int nodes, int virtualNodes)
    {
        var ring = new ClusterRing(0, 2, virtualNodes, ClusterRingTests.Names(nodes));
        int[] counts = CountKeys(ring);
        double[] arcs = new double[nodes];
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        ulong previous = tokens[^1];
        for (int i = 0; i < tokens.Length; i++)
        {
            arcs[ring.Owners[i]] += unchecked(tokens[i] - previous) / Math.Pow(2, 64);
            previous = tokens[i];
        }
        for (int n = 0; n < nodes; n++)
        {
            // Binomial noise of Keys draws: 4 sigma is at most 0.0063 of all keys (p = 1/2).
            double sigma = Math.Sqrt(arcs[n] * (1 - arcs[n]) / Keys);
            Assert.InRange((double)counts[n] / Keys - arcs[n], -4 * sigma, 4 * sigma);
        }
    }

    /// <summary>How many of 100,000 random keys (fixed seed, uniform in [0, 2^40)) each node is primary of.</summary>
    internal static int[] CountKeys(ClusterRing ring)
    {
        var random = new Random(20140604);
        var keys = new ulong[Keys];
        for (int i = 0; i < Keys; i++) keys[i] = (ulong)random.NextInt64(1L << 40);
        Array.Sort(keys);
        // Assign takes strictly ascending keys; with this seed the 100,000 draws from 2^40 are distinct
        // (1e10 / 2^41 ≈ 0.005 collisions expected), else it would throw.
        var counts = new int[ring.NodeCount];
        KeySlicer.Assign(ring, Ring.NameHash("embeddings"), keys, new int[Keys], counts);
        return counts;
    }
}
