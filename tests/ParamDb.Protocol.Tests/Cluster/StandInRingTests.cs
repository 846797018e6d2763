using System.Globalization;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Protocol.Tests.Cluster;

/// <summary>
/// Re-replication in the ring: an arc whose chain lost a node gets a stand-in, the next node past its chain that is
/// up; a stand-in the server manager counts caught up is a copy, and serves the arc once no node of its chain is up.
/// </summary>
public sealed class StandInRingTests
{
    private static readonly string[] FiveNodes = ClusterRingTests.Names(5);

    private static KeyValuePair<string, Ring>[] Nodes() => [.. FiveNodes.Select(id => KeyValuePair.Create(id, Ring.ForNode(id, 16)))];

    private static ClusterRing RingWith(Dictionary<string, NodeState> states, IEnumerable<KeyValuePair<ulong, string>>? standIns = null) =>
        new(2, 2, 16, Nodes(), states, standIns);

    // Reference: the distinct nodes clockwise from arc i's end, as a walk over the merged tokens.
    private static List<int> Walk(ClusterRing ring, int arc)
    {
        var found = new List<int>();
        for (int k = 0; k < ring.Tokens.Length; k++)
        {
            int node = ring.Owners[(arc + k) % ring.Tokens.Length];
            if (!found.Contains(node)) found.Add(node);
        }
        return found;
    }

    [Fact]
    public void AnArcWhoseChainLostANodeGetsTheNextNodeUpAsAStandInNotYetACopy()
    {
        var all = RingWith([]);
        var ring = RingWith(new() { ["node-b"] = NodeState.Down, ["node-c"] = NodeState.Joining });
        int b = ring.NodeIndex("node-b"), c = ring.NodeIndex("node-c");
        int withStandIn = 0;
        for (int i = 0; i < ring.Tokens.Length; i++)
        {
            List<int> walk = Walk(ring, i);
            int[] chain = [walk[0], walk[1]];
            int[] set = ring.ReplicasAt(i).ToArray();
            Assert.Equal(chain.Length, ring.CopiesAt(i));   // nothing counted caught up: only the chain holds copies
            if (!chain.Contains(b) && !chain.Contains(c))
            {
                Assert.Equal(all.ReplicasAt(i).ToArray(), set);   // a whole chain: no stand-in, as before
                continue;
            }
            int up = chain.Count(n => n != b && n != c);
            // One stand-in per chain node not up: the first nodes past the chain that are up, in ring order.
            int[] expected = [.. walk.Skip(2).Where(n => n != b && n != c).Take(2 - up)];
            Assert.Equal(expected, set[2..]);
            Assert.All(expected, n => Assert.True(ring.IsStandIn(i, n)));
            Assert.All(chain, n => Assert.False(ring.IsStandIn(i, n)));
            // A stand-in still being sent the arc serves nothing: with no chain node up the arc is unavailable.
            Assert.Equal(up > 0 ? chain.First(n => n != b && n != c) : chain[0], ring.Primaries[i]);
            withStandIn++;
        }
        Assert.True(withStandIn > 16, $"{withStandIn} arcs with a stand-in");
        Assert.Equal(4, ring.MaxSetSize);   // min(2R, N)
    }

    [Fact]
    public void ACaughtUpStandInServesAnArcWhoseWholeChainIsDownAndIsPreferredToANewOne()
    {
        var firstFailure = RingWith(new() { ["node-a"] = NodeState.Down });
        int a = firstFailure.NodeIndex("node-a");
        var caughtUp = new List<KeyValuePair<ulong, string>>();
        int arcOfA = -1;
        for (int i = 0; i < firstFailure.Tokens.Length; i++)
        {
            ReadOnlySpan<int> set = firstFailure.ReplicasAt(i);
            if (!set.Contains(a)) continue;
            caughtUp.Add(KeyValuePair.Create(firstFailure.Tokens[i], firstFailure.Nodes[set[^1]]));
            if (firstFailure.Owners[i] == a) arcOfA = i;
        }
        Assert.True(arcOfA >= 0);
        var counted = RingWith(new() { ["node-a"] = NodeState.Down }, caughtUp);
        Assert.Equal(firstFailure.Primaries.ToArray(), counted.Primaries.ToArray());
        Assert.Equal(3, counted.CopiesAt(arcOfA));

        // The other node of arcOfA's chain dies too: its caught-up stand-in serves it, and a new stand-in is sent it.
        int other = counted.ReplicasAt(arcOfA)[0], standIn = counted.ReplicasAt(arcOfA)[2];
        var states = new Dictionary<string, NodeState> { ["node-a"] = NodeState.Down, [counted.Nodes[other]] = NodeState.Down };
        var second = RingWith(states, caughtUp);
        int[] now = second.ReplicasAt(arcOfA).ToArray();
        Assert.Equal(standIn, second.Primaries[arcOfA]);
        Assert.Equal(standIn, now[0]);
        Assert.Equal(3, second.CopiesAt(arcOfA));           // the stand-in and the two down chain nodes
        Assert.Equal(4, now.Length);                        // and a new stand-in, not yet a copy
        Assert.True(second.IsStandIn(arcOfA, now[3]) && now[3] != a && now[3] != other);
        Assert.Equal(standIn, second.PrimaryOf(second.Tokens[arcOfA]));

        // Not counted caught up, the same stand-in serves nothing: the arc is unavailable.
        var uncounted = RingWith(states);
        Assert.Equal(uncounted.Owners[arcOfA], uncounted.Primaries[arcOfA]);

        // A client reading GET /v1/cluster builds the same ring, stand-ins included.
        var view = new ClusterView
        {
            Epoch = 2, Replicas = 2, VirtualNodes = 16,
            Nodes = [.. FiveNodes.Select(id => new ClusterNode
            {
                Id = id, State = states.GetValueOrDefault(id, NodeState.Up),
                Tokens = [.. Ring.ForNode(id, 16).Tokens.ToArray().Select(t => t.ToString(CultureInfo.InvariantCulture))],
            })],
            StandIns = [.. caughtUp.Select(s => new ClusterStandIn { Token = s.Key.ToString(CultureInfo.InvariantCulture), Node = s.Value })],
        };
        ClusterRing fromView = ClusterRing.FromView(view);
        Assert.Equal(second.Primaries.ToArray(), fromView.Primaries.ToArray());
        for (int i = 0; i < second.Tokens.Length; i++) Assert.Equal(second.ReplicasAt(i).ToArray(), fromView.ReplicasAt(i).ToArray());
    }

    [Theory]
    [InlineData("x", "node-a", "not a decimal u64")]
    [InlineData("12", "node-z", "names node 'node-z', which it does not list")]
    [InlineData("12", "", "names no node")]
    public void AMalformedStandInIsRefused(string token, string node, string message)
    {
        var view = new ClusterView
        {
            Epoch = 1, Replicas = 2, VirtualNodes = 16,
            Nodes = [.. FiveNodes.Select(id => new ClusterNode { Id = id, State = NodeState.Up, Tokens = [.. Ring.ForNode(id, 16).Tokens.ToArray().Select(t => t.ToString(CultureInfo.InvariantCulture))] })],
            StandIns = [new ClusterStandIn { Token = token, Node = node }],
        };
        Assert.Contains(message, Assert.Throws<FormatException>(() => ClusterRing.FromView(view)).Message);
    }
}
