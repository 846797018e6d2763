using ParamDb.Protocol.Cluster;

namespace ParamDb.Protocol.Tests.Cluster;

/// <summary>
/// The cluster ring: golden hash values (data on disk and every client depend on them, so they may only be
/// added to), replica sets, arc boundaries, ties, and agreement with each node's own <see cref="Ring"/>.
/// </summary>
public sealed class ClusterRingTests
{
    private static readonly string[] ThreeNodes = ["node-a", "node-b", "node-c"];

    [Fact]
    public void Golden_NodeTokensAndNameHash()
    {
        // Computed once from the hash (FNV-1a of the UTF-8 name, then SplitMix64's finalizer) and pasted.
        ReadOnlySpan<ulong> tokens = Ring.ForNode("node-a", 64).Tokens;
        Assert.Equal(64, tokens.Length);
        Assert.Equal(227034022203939304UL, tokens[0]);
        Assert.Equal(293437277826807083UL, tokens[1]);
        Assert.Equal(472199156546951597UL, tokens[2]);
        Assert.Equal(639988765568997619UL, tokens[3]);
        Assert.Equal(15833092349915492621UL, Ring.NameHash("embeddings"));
    }

    [Theory]
    [InlineData(0UL, 5526601115882284407UL, "node-b", "node-c")]
    [InlineData(4095UL, 5526601115882284407UL, "node-b", "node-c")]
    [InlineData(4096UL, 5427158978516671211UL, "node-b", "node-c")]
    [InlineData(28672UL, 12043681415046086376UL, "node-b", "node-a")]
    [InlineData(405504UL, 6839873441774362146UL, "node-a", "node-b")]
    [InlineData(1048576UL, 805738103835246247UL, "node-c", "node-a")]
    [InlineData(123456789UL, 14774600799129036168UL, "node-b", "node-a")]
    [InlineData(1073741824UL, 9693411163834355027UL, "node-a", "node-c")]
    [InlineData(1099511627776UL, 12738277673328806298UL, "node-c", "node-a")]
    [InlineData(ulong.MaxValue, 17426161451854357874UL, "node-b", "node-c")]
    public void Golden_PrimaryAndBackupOnThreeNodes(ulong key, ulong position, string primary, string backup)
    {
        var ring = new ClusterRing(1, 2, 64, ThreeNodes);
        ulong table = Ring.NameHash("embeddings");
        Assert.Equal(position, Ring.Position(table, key));
        Assert.Equal(primary, ring.Nodes[ring.PrimaryOf(table, key)]);
        Span<int> replicas = stackalloc int[2];
        Assert.Equal(2, ring.ReplicasOf(table, key, replicas));
        Assert.Equal(primary, ring.Nodes[replicas[0]]);
        Assert.Equal(backup, ring.Nodes[replicas[1]]);
    }

    [Theory]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    [InlineData(5, 3)]
    [InlineData(3, 5)]
    [InlineData(1, 2)]
    public void Replicas_AreDistinctNodesPrimaryFirst(int nodes, int replicas)
    {
        var ring = new ClusterRing(3, replicas, 64, Names(nodes));
        int expected = Math.Min(replicas, nodes);
        Assert.Equal(expected, ring.ReplicaCount);
        Span<int> set = stackalloc int[8];
        var random = new Random(11);
        for (int i = 0; i < 20_000; i++)
        {
            ulong position = NextU64(random);
            Assert.Equal(expected, ring.ReplicasOf(position, set));
            Assert.Equal(ring.PrimaryOf(position), set[0]);
            for (int a = 0; a < expected; a++)
            {
                for (int b = a + 1; b < expected; b++) Assert.NotEqual(set[a], set[b]);
            }
            Assert.Equal(Successors(ring, position, expected), set[..expected].ToArray());
        }
        Assert.Throws<ArgumentException>(() => ring.ReplicasOf(0, new int[expected - 1]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    public void Arcs_EndExactlyAtEachNodesTokens(int nodes)
    {
        var ring = new ClusterRing(0, 2, 64, Names(nodes));
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        ReadOnlySpan<int> owners = ring.Owners;
        Assert.Equal(nodes * 64, tokens.Length);
        for (int i = 0; i < tokens.Length; i++)
        {
            int next = i + 1 == tokens.Length ? 0 : i + 1;
            // A position at a token is that token's node's; one past it is the next token's node's.
            Assert.Equal(owners[i], ring.PrimaryOf(tokens[i]));
            Assert.Equal(i, ring.RangeOf(tokens[i]));
            Assert.Equal(owners[next], ring.PrimaryOf(unchecked(tokens[i] + 1)));
            if (i > 0) Assert.True(tokens[i - 1] < tokens[i]);
        }
        // Past the largest token the ring wraps to the smallest; 0 lies before it.
        Assert.Equal(owners[0], ring.PrimaryOf(ulong.MaxValue));
        Assert.Equal(owners[0], ring.PrimaryOf(0));
        for (int n = 0; n < nodes; n++)
        {
            var own = new List<ulong>();
            for (int i = 0; i < tokens.Length; i++)
            {
                if (owners[i] == n) own.Add(tokens[i]);
            }
            Assert.Equal(Ring.ForNode(ring.Nodes[n], 64).Tokens.ToArray(), own);
            Assert.Equal(own, ring.NodeRing(n).Tokens.ToArray());
        }
    }

    [Theory]
    [InlineData(3, 64)]
    [InlineData(5, 64)]
    [InlineData(7, 8)]
    public void NodeRing_RangeOfNamesTheTokenEndingTheArc(int nodes, int virtualNodes)
    {
        // The storage layer keeps a vector clock per token of its own Ring.ForNode(id, V): every position the
        // cluster gives node X must fall in X's range whose token ends the cluster arc.
        var ring = new ClusterRing(0, 2, virtualNodes, Names(nodes));
        var own = new Ring[nodes];
        for (int n = 0; n < nodes; n++) own[n] = Ring.ForNode(ring.Nodes[n], virtualNodes);
        var random = new Random(5);
        int tokens = ring.Tokens.Length;
        for (int i = 0; i < 100_000 + 2 * tokens; i++)
        {
            // Every token and the position just past it (the edges of the arcs), then random positions.
            ulong position = i < 2 * tokens ? unchecked(ring.Tokens[i / 2] + (ulong)(i % 2)) : NextU64(random);
            int x = ring.PrimaryOf(position);
            ulong arcEnd = ring.Tokens[ring.RangeOf(position)];
            Assert.Equal(arcEnd, own[x].Tokens[own[x].RangeOf(position)]);
        }
    }

    [Fact]
    public void Ties_GoToTheOrdinallySmallerIdWhateverTheInputOrder()
    {
        var b = new KeyValuePair<string, Ring>("b", new Ring([100UL, 500UL]));
        var a = new KeyValuePair<string, Ring>("a", new Ring([100UL, 900UL]));
        var c = new KeyValuePair<string, Ring>("c", new Ring([300UL]));
        foreach (KeyValuePair<string, Ring>[] order in new KeyValuePair<string, Ring>[][] { [a, b, c], [c, b, a], [b, c, a] })
        {
            var ring = new ClusterRing(0, 3, 2, order);
            Assert.Equal(new[] { "a", "b", "c" }, ring.Nodes);
            Assert.Equal(new[] { 100UL, 100UL, 300UL, 500UL, 900UL }, ring.Tokens.ToArray());
            Assert.Equal(new[] { 0, 1, 2, 1, 0 }, ring.Owners.ToArray());
            Assert.Equal(0, ring.PrimaryOf(100));
            Assert.Equal(0, ring.PrimaryOf(1));
            Assert.Equal(2, ring.PrimaryOf(101));
            Assert.Equal(0, ring.PrimaryOf(901));
            var set = new int[3];
            ring.ReplicasOf(100, set);
            Assert.Equal(new[] { 0, 1, 2 }, set);
            ring.ReplicasOf(400, set);
            Assert.Equal(new[] { 1, 0, 2 }, set);
        }
    }

    [Fact]
    public void NodeIndex_OwnsAndHolds()
    {
        var ring = new ClusterRing(2, 2, 64, ["node-c", "node-a", "node-b"]);
        Assert.Equal(ThreeNodes, ring.Nodes);
        Assert.Equal(1, ring.NodeIndex("node-b"));
        Assert.Equal(-1, ring.NodeIndex("node-d"));
        Assert.Equal(-1, ring.NodeIndex("NODE-A"));
        ulong table = Ring.NameHash("t");
        var set = new int[2];
        for (ulong key = 0; key < 200UL << Ring.BlockBits; key += 4096)
        {
            ring.ReplicasOf(table, key, set);
            for (int n = 0; n < 3; n++)
            {
                Assert.Equal(n == set[0], ring.Owns(n, table, key));
                Assert.Equal(n == set[0] || n == set[1], ring.Holds(n, table, key));
            }
        }
    }

    [Fact]
    public void SingleNode_OwnsEverything()
    {
        var ring = new ClusterRing(0, 2, 64, ["paramdb"]);
        Assert.Equal(1, ring.ReplicaCount);
        var set = new int[1];
        var random = new Random(3);
        for (int i = 0; i < 1000; i++)
        {
            Assert.Equal(0, ring.PrimaryOf(NextU64(random)));
            Assert.Equal(1, ring.ReplicasOf(NextU64(random), set));
            Assert.Equal(0, set[0]);
        }
    }

    [Fact]
    public void Constructor_RejectsWhatIsNotARing()
    {
        Assert.Throws<ArgumentException>(() => new ClusterRing(0, 2, 64, Array.Empty<string>()));
        Assert.Throws<ArgumentException>(() => new ClusterRing(0, 2, 64, ["a", "b", "a"]));
        Assert.Throws<ArgumentException>(() => new ClusterRing(0, 2, 64, ["a", ""]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClusterRing(0, 0, 64, ["a"]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClusterRing(0, 2, 0, ["a"]));
    }

    internal static string[] Names(int nodes)
    {
        var names = new string[nodes];
        for (int n = 0; n < nodes; n++) names[n] = "node-" + (char)('a' + n);
        return names;
    }

    internal static ulong NextU64(Random random) => (ulong)random.NextInt64() ^ ((ulong)random.Next(2) << 63);

    // Reference: walk the merged tokens one by one from the position, collecting new nodes.
    private static int[] Successors(ClusterRing ring, ulong position, int count)
    {
        int start = 0;
        while (start < ring.Tokens.Length && ring.Tokens[start] < position) start++;
        var found = new List<int>();
        for (int k = 0; found.Count < count; k++)
        {
            int node = ring.Owners[(start + k) % ring.Tokens.Length];
            if (!found.Contains(node)) found.Add(node);
        }
        return [.. found];
    }

    [Fact]
    public void ADownPrimarysArcsAreServedByTheFirstBackupThatIsUpAndAJoiningNodeServesNone()
    {
        static KeyValuePair<string, Ring>[] Nodes() => [.. ThreeNodes.Select(id => KeyValuePair.Create(id, Ring.ForNode(id, 64)))];
        var all = new ClusterRing(1, 3, 64, Nodes());
        var failed = new ClusterRing(2, 3, 64, Nodes(), new Dictionary<string, NodeState> { ["node-a"] = NodeState.Down, ["node-b"] = NodeState.Joining });
        int a = all.NodeIndex("node-a"), b = all.NodeIndex("node-b"), c = all.NodeIndex("node-c");
        int moved = 0;
        for (int i = 0; i < all.Tokens.Length; i++)
        {
            int[] chain = all.ReplicasAt(i).ToArray(), now = failed.ReplicasAt(i).ToArray();
            Assert.Equal(all.Owners[i], chain[0]);
            // node-c is the only one up: it serves every arc and comes first; the rest keep the chain's order.
            Assert.Equal(c, failed.Primaries[i]);
            Assert.Equal(c, now[0]);
            Assert.Equal(chain.Where(n => n != c), now[1..]);
            if (chain[0] != c) moved++;
        }
        Assert.True(moved > 64);
        Assert.Equal((NodeState.Down, NodeState.Joining, NodeState.Up), (failed.StateOf(a), failed.StateOf(b), failed.StateOf(c)));
        Assert.Equal(c, failed.PrimaryOf(Ring.NameHash("t"), 12345));

        // With no node of an arc up, its owner stays first: the arc is unavailable, not served by a stale copy.
        var none = new ClusterRing(3, 2, 64, Nodes(), ThreeNodes.ToDictionary(id => id, _ => NodeState.Down));
        for (int i = 0; i < none.Tokens.Length; i++) Assert.Equal(none.Owners[i], none.Primaries[i]);

        // The document's states give a client the same ring.
        var view = new ClusterView
        {
            Epoch = 2, Replicas = 3, VirtualNodes = 64,
            Nodes = [.. ThreeNodes.Select(id => new ClusterNode { Id = id, State = id == "node-a" ? NodeState.Down : id == "node-b" ? NodeState.Joining : NodeState.Up, Tokens = [.. Ring.ForNode(id, 64).Tokens.ToArray().Select(t => t.ToString(System.Globalization.CultureInfo.InvariantCulture))] })],
        };
        Assert.Equal(failed.Primaries.ToArray(), ClusterRing.FromView(view).Primaries.ToArray());
    }
}
