using ParamDb.Protocol.Cluster;
using Xunit.Abstractions;

namespace ParamDb.Protocol.Tests.Cluster;

/// <summary>Joined nodes get tokens that split the ring evenly, whatever the node names.</summary>
public sealed class TokenAllocatorTests(ITestOutputHelper output)
{
    private const int Keys = 100_000;

    /// <summary>The ring after <paramref name="nodes"/> − 1 joins to a first node with hashed tokens.</summary>
    internal static ClusterRing Grow(int nodes, int virtualNodes, string prefix = "node-")
    {
        var members = new List<KeyValuePair<string, Ring>> { new(prefix + "0", Ring.ForNode(prefix + "0", virtualNodes)) };
        for (int n = 1; n < nodes; n++)
        {
            var before = new ClusterRing((ulong)n, 2, virtualNodes, members);
            members.Add(new(prefix + n, TokenAllocator.ForJoiner(before, virtualNodes)));
        }
        return new ClusterRing((ulong)nodes, 2, virtualNodes, members);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(8)]
    public void HundredThousandKeysLandWithin15PercentOfAFairShareAtV64(int nodes)
    {
        int[] counts = ClusterBalanceTests.CountKeys(Grow(nodes, 64));
        double fair = (double)Keys / nodes;
        double worst = 0;
        foreach (int count in counts) worst = Math.Max(worst, Math.Abs(count / fair - 1));
        output.WriteLine($"N = {nodes}, V = 64: the node furthest from a fair share is {worst:P1} off");
        Assert.InRange(worst, 0, 0.15);
    }

    [Theory]
    [InlineData("node-")]
    [InlineData("ps")]
    [InlineData("10.0.0.")]
    public void EveryNodeOwnsItsFairShareOfTheRingWithin3Percent(string prefix)
    {
        for (int nodes = 2; nodes <= 6; nodes++)
        {
            ClusterRing ring = Grow(nodes, 64, prefix);
            double[] shares = Shares(ring);
            foreach (double share in shares) Assert.InRange(share * nodes - 1, -0.03, 0.03);
        }
    }

    [Fact]
    public void AJoinerGetsExactlyVDistinctTokensAndEveryOtherNodeKeepsItsOwn()
    {
        ClusterRing before = Grow(3, 64);
        Ring joiner = TokenAllocator.ForJoiner(before, 64);
        Assert.Equal(64, joiner.Count);
        var existing = new HashSet<ulong>(before.Tokens.ToArray());
        foreach (ulong token in joiner.Tokens) Assert.DoesNotContain(token, existing);
    }

    [Fact]
    public void TheSameRingGivesTheSameTokens()
    {
        ClusterRing ring = Grow(4, 64);
        Assert.Equal(TokenAllocator.ForJoiner(ring, 64).Tokens.ToArray(), TokenAllocator.ForJoiner(ring, 64).Tokens.ToArray());
    }

    [Fact]
    public void OnlyTheCutPartsMove()
    {
        // A key whose primary changes in a join moves to the joiner, never between two old nodes.
        ClusterRing before = Grow(3, 64);
        ClusterRing after = Grow(4, 64);
        int joiner = after.NodeIndex("node-3");
        var random = new Random(7);
        for (int i = 0; i < 20_000; i++)
        {
            ulong position = (ulong)random.NextInt64() * 2 + (ulong)random.Next(2);
            string was = before.Nodes[before.PrimaryOf(position)], now = after.Nodes[after.PrimaryOf(position)];
            if (was != now) Assert.Equal(joiner, after.NodeIndex(now));
        }
    }

    [Fact]
    public void TinyRingsStillGetVTokens()
    {
        var one = new ClusterRing(1, 1, 1, [new KeyValuePair<string, Ring>("a", new Ring([42UL]))]);
        Ring joiner = TokenAllocator.ForJoiner(one, 4);
        Assert.Equal(4, joiner.Count);
    }

    private static double[] Shares(ClusterRing ring)
    {
        var shares = new double[ring.NodeCount];
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        ulong previous = tokens[^1];
        for (int i = 0; i < tokens.Length; i++)
        {
            shares[ring.Owners[i]] += unchecked(tokens[i] - previous) / Math.Pow(2, 64);
            previous = tokens[i];
        }
        return shares;
    }
}
