using System.Text.Json;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Protocol.Tests.Cluster;

/// <summary>The <c>GET /v1/cluster</c> document: its JSON shape and the ring a client builds from it.</summary>
public sealed class ClusterViewTests
{
    [Fact]
    public void FromView_OfARingsViewThroughJson_IsTheSameRing()
    {
        var ring = new ClusterRing(9, 3, 16, ["n3", "n1", "n4", "n2"]);
        string json = JsonSerializer.Serialize(ViewOf(ring), ProtocolJson.Default.ClusterView);
        ClusterView parsed = JsonSerializer.Deserialize(json, ProtocolJson.Default.ClusterView)!;
        ClusterRing back = ClusterRing.FromView(parsed);

        Assert.Equal(ring.Epoch, back.Epoch);
        Assert.Equal(ring.Replicas, back.Replicas);
        Assert.Equal(ring.VirtualNodes, back.VirtualNodes);
        Assert.Equal(ring.Nodes, back.Nodes);
        Assert.Equal(ring.Tokens.ToArray(), back.Tokens.ToArray());
        Assert.Equal(ring.Owners.ToArray(), back.Owners.ToArray());
        for (int n = 0; n < ring.NodeCount; n++) Assert.Equal(ring.NodeRing(n).Tokens.ToArray(), back.NodeRing(n).Tokens.ToArray());
        var random = new Random(1);
        Span<int> a = stackalloc int[3], b = stackalloc int[3];
        for (int i = 0; i < 10_000; i++)
        {
            ulong position = ClusterRingTests.NextU64(random);
            ring.ReplicasOf(position, a);
            back.ReplicasOf(position, b);
            Assert.True(a.SequenceEqual(b));
        }
    }

    [Fact]
    public void Json_IsCamelCaseWithLowercaseStatesAndDecimalTokens()
    {
        var ring = new ClusterRing(0, 2, 2, ["solo"]);
        ClusterView view = ViewOf(ring) with { Leader = null };
        string json = JsonSerializer.Serialize(view with { Nodes = [view.Nodes[0] with { State = NodeState.Leaving, Raft = null }] }, ProtocolJson.Default.ClusterView);
        string tokens = string.Join(",", ring.TokenStrings(0).Select(t => "\"" + t + "\""));
        Assert.Equal(
            "{\"epoch\":0,\"leader\":null,\"replicas\":2,\"vnodes\":2,\"underReplicated\":0,\"unavailable\":0," +
            "\"nodes\":[{\"id\":\"solo\",\"http\":\"solo:8080\",\"h2\":\"solo:8081\",\"state\":\"leaving\",\"tokens\":[" + tokens + "]}]}",
            json);
    }

    [Fact]
    public void Json_ParsesEveryStateAndRejectsOthers()
    {
        foreach (var (text, state) in new[] { ("joining", NodeState.Joining), ("up", NodeState.Up), ("down", NodeState.Down), ("leaving", NodeState.Leaving) })
        {
            ClusterView view = Parse(text, "[\"18446744073709551615\",\"0\"]");
            Assert.Equal(state, view.Nodes[0].State);
            ClusterRing ring = ClusterRing.FromView(view);
            Assert.Equal(new[] { 0UL, ulong.MaxValue }, ring.Tokens.ToArray());
        }
        Assert.Throws<JsonException>(() => Parse("sleeping", "[\"1\"]"));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("{\"epoch\":0,\"replicas\":2,\"vnodes\":1}", ProtocolJson.Default.ClusterView));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" 1")]
    [InlineData("1 ")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("0x10")]
    [InlineData("1.0")]
    [InlineData("1e3")]
    [InlineData("1,000")]
    [InlineData("18446744073709551616")]
    [InlineData("abc")]
    [InlineData("١٢٣")]
    public void FromView_RejectsATokenThatIsNotADecimalU64(string token)
    {
        ClusterView view = Parse("up", "[\"5\"]");
        view = view with { Nodes = [view.Nodes[0] with { Tokens = ["7", token] }] };
        var e = Assert.Throws<FormatException>(() => ClusterRing.FromView(view));
        Assert.Contains("token 1 of node 'a'", e.Message);
    }

    [Fact]
    public void FromView_RejectsADocumentThatIsNotARing()
    {
        ClusterView good = Parse("up", "[\"5\",\"9\"]");
        ClusterNode node = good.Nodes[0];
        Assert.Throws<FormatException>(() => ClusterRing.FromView(good with { Nodes = [] }));
        Assert.Throws<FormatException>(() => ClusterRing.FromView(good with { Nodes = [node, node with { Tokens = ["3"] }] }));
        Assert.Throws<FormatException>(() => ClusterRing.FromView(good with { Nodes = [node with { Tokens = [] }] }));
        Assert.Throws<FormatException>(() => ClusterRing.FromView(good with { Nodes = [node with { Tokens = ["5", "5"] }] }));
        Assert.Throws<FormatException>(() => ClusterRing.FromView(good with { Nodes = [node with { Id = "" }] }));
        Assert.Throws<FormatException>(() => ClusterRing.FromView(good with { Replicas = 0 }));
        Assert.Throws<FormatException>(() => ClusterRing.FromView(good with { VirtualNodes = 0 }));
        Assert.Throws<FormatException>(() => ClusterRing.FromView(JsonSerializer.Deserialize(
            "{\"epoch\":1,\"replicas\":2,\"vnodes\":1,\"nodes\":[{\"id\":\"a\",\"state\":\"up\",\"tokens\":null}]}", ProtocolJson.Default.ClusterView)!));
    }

    private static ClusterView Parse(string state, string tokens) => JsonSerializer.Deserialize(
        "{\"epoch\":4,\"leader\":\"a\",\"replicas\":2,\"vnodes\":2,\"underReplicated\":1,\"unavailable\":0," +
        "\"nodes\":[{\"id\":\"a\",\"http\":\"h:1\",\"h2\":\"h:2\",\"raft\":\"h:3\",\"state\":\"" + state + "\",\"tokens\":" + tokens + "}]}",
        ProtocolJson.Default.ClusterView)!;

    private static ClusterView ViewOf(ClusterRing ring)
    {
        var nodes = new ClusterNode[ring.NodeCount];
        for (int n = 0; n < nodes.Length; n++)
        {
            string id = ring.Nodes[n];
            nodes[n] = new ClusterNode
            {
                Id = id,
                Http = id + ":8080",
                H2 = id + ":8081",
                Raft = id + ":8082",
                State = NodeState.Up,
                Tokens = ring.TokenStrings(n),
            };
        }
        return new ClusterView { Epoch = ring.Epoch, Leader = ring.Nodes[0], Replicas = ring.Replicas, VirtualNodes = ring.VirtualNodes, Nodes = nodes };
    }
}
