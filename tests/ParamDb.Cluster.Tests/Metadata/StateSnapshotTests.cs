using ParamDb.Cluster.Wire;
using static ParamDb.Cluster.Tests.Support.Samples;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Tests.Metadata;

/// <summary>The snapshot file's exact bytes: old snapshots must stay readable, so the layout only grows.</summary>
public sealed class StateSnapshotTests
{
    /// <summary>Init (n1), AddNode n2, CreateTable emb, RegisterWorker w, one of each kind of entry.</summary>
    internal static ClusterState SampleState()
    {
        var state = Init().Apply(ClusterState.Empty, out _);
        state = new AddNode(Node("n2", 2, NodeState.Joining) with { Tokens = Tokens }).Apply(state, out _);
        state = new CreateTable("emb", Schema()).Apply(state, out _);
        return new RegisterWorker("w", ["emb"], 10_000).Apply(state, out _);
    }

    private static readonly string SchemaJsonHex =
        Convert.ToHexString("{\"dim\":4,\"init\":{\"kind\":\"zeros\"},\"updater\":{\"kind\":\"sgd\",\"lr\":0.5}}"u8).ToLowerInvariant();

    /// <summary>A version-1 snapshot: what nodes wrote before <see cref="NodeInfo.LeftUpAt"/>; still read.</summary>
    private static readonly string GoldenV1Hex =
        "5044424d" + "0100" +                                   // "PDBM", version 1
        "5bad8f0fcbd99f46a16570867728950e" +                    // cluster id
        "0300" + "4000" + "0200000000000000" +                  // R 3, V 64, ring epoch 2
        "02000000" + "02000000" +                               // next table id 2, next worker id 2
        "02000000" +                                            // 2 nodes
        "0200" + "6e31" + "0e00" + "3132372e302e302e313a38303830" + "0e00" + "3132372e302e302e313a38303831" +
        "0e00" + "3132372e302e302e313a37303030" + "01" + "0000" +
        "0200" + "6e32" + "0e00" + "3132372e302e302e323a38303830" + "0e00" + "3132372e302e302e323a38303831" +
        "0e00" + "3132372e302e302e323a37303030" + "00" + TokensHex +
        "01000000" +                                            // 1 table
        "0300" + "656d62" + "01000000" + "43000000" + SchemaJsonHex +
        "01000000" +                                            // 1 worker
        "01000000" + "0100" + "77" + "0100" + "0300" + "656d62" + "10270000";

    /// <summary>Version 2: the same, then the nodes that left up (none here).</summary>
    private static readonly string GoldenV2Hex = "5044424d" + "0200" + GoldenV1Hex[12..] + "00000000";

    /// <summary>Version 3: the same, then the caught-up stand-ins (none here).</summary>
    private static readonly string GoldenHex = "5044424d" + "0300" + GoldenV2Hex[12..] + "00000000";

    [Fact]
    public void Encodes_to_golden_bytes() => Assert.Equal(GoldenHex, Hex(StateSnapshot.Encode(SampleState())));

    [Fact]
    public void Golden_bytes_decode_to_the_state() => Assert.Equal(SampleState(), StateSnapshot.Decode(Bytes(GoldenHex)));

    [Fact]
    public void A_version_1_snapshot_still_decodes_with_no_node_having_left_up() =>
        Assert.Equal(SampleState(), StateSnapshot.Decode(Bytes(GoldenV1Hex)));

    [Fact]
    public void A_version_2_snapshot_still_decodes_with_no_stand_ins() =>
        Assert.Equal(SampleState(), StateSnapshot.Decode(Bytes(GoldenV2Hex)));

    [Fact]
    public void Stand_ins_are_kept_in_order_and_one_of_an_unknown_node_or_twice_is_refused()
    {
        var state = SampleState() with { StandIns = [new StandIn(9, "n2"), new StandIn(0x0102030405060708, "n1"), new StandIn(9, "n1")] };
        string hex = Hex(StateSnapshot.Encode(state));
        Assert.EndsWith("03000000" + "0900000000000000" + "0200" + "6e31" + "0900000000000000" + "0200" + "6e32"
            + "0807060504030201" + "0200" + "6e31", hex);   // by token, then node id
        Assert.Equal(state, StateSnapshot.Decode(Bytes(hex)));
        Assert.NotEqual(state, state with { StandIns = state.StandIns.Remove(new StandIn(9, "n1")) });
        string before = GoldenHex[..^8];   // everything up to the stand-ins' count
        Assert.Contains("stand-in of unknown node n9",
            Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(Bytes(before + "01000000" + "0900000000000000" + "0200" + "6e39"))).Message);
        Assert.Contains("appears twice",
            Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(Bytes(before + "02000000" + "0900000000000000" + "0200" + "6e31" + "0900000000000000" + "0200" + "6e31"))).Message);
    }

    [Fact]
    public void The_epoch_a_node_left_up_at_is_kept()
    {
        var state = new SetNodeState("n1", NodeState.Down).Apply(SampleState(), out _);   // n1 was up: epoch 3
        Assert.Equal(3UL, state.Nodes["n1"].LeftUpAt);
        string hex = Hex(StateSnapshot.Encode(state));
        Assert.EndsWith("01000000" + "0200" + "6e31" + "0300000000000000" + "00000000", hex);   // one node: n1, epoch 3; no stand-ins
        Assert.Equal(state, StateSnapshot.Decode(Bytes(hex)));
        Assert.NotEqual(state, state with { Nodes = state.Nodes.SetItem("n1", state.Nodes["n1"] with { LeftUpAt = 2 }) });
        // A left-up epoch for a node the snapshot does not have is refused.
        Assert.Contains("unknown node n9",
            Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(Bytes(hex[..^32] + "0200" + "6e39" + "0300000000000000" + "00000000"))).Message);
    }

    [Fact]
    public void The_empty_state_round_trips()
    {
        byte[] bytes = StateSnapshot.Encode(ClusterState.Empty);
        Assert.Equal(ClusterState.Empty, StateSnapshot.Decode(bytes));
        Assert.False(StateSnapshot.Decode(bytes).IsInitialized);
    }

    [Fact]
    public void Every_truncation_is_rejected()
    {
        byte[] bytes = Bytes(GoldenHex);
        for (int length = 0; length < bytes.Length; length++)
        {
            var e = Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(bytes.AsSpan(0, length)));
            Assert.StartsWith("Metadata snapshot", e.Message);
        }
    }

    [Fact]
    public void Wrong_magic_newer_versions_and_trailing_bytes_are_rejected()
    {
        Assert.Contains("does not start with \"PDBM\"",
            Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(Bytes("5044424e" + GoldenHex[8..]))).Message);
        Assert.Equal("Metadata snapshot version 4; this build reads versions 1 to 3.",
            Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(Bytes("5044424d0400" + GoldenHex[12..]))).Message);
        Assert.Equal("Metadata snapshot version 0; this build reads versions 1 to 3.",
            Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(Bytes("5044424d0000" + GoldenHex[12..]))).Message);
        Assert.Contains("1 unexpected trailing bytes",
            Assert.Throws<MetadataFormatException>(() => StateSnapshot.Decode(Bytes(GoldenHex + "ff"))).Message);
    }

    [Fact]
    public void States_differing_in_any_map_entry_are_not_equal()
    {
        var state = SampleState();
        Assert.Equal(state, StateSnapshot.Decode(StateSnapshot.Encode(state)));
        Assert.NotEqual(state, state with { Workers = state.Workers.SetItem(1, state.Workers[1] with { Tables = ["other"] }) });
        Assert.NotEqual(state, state with { Tables = state.Tables.SetItem("emb", state.Tables["emb"] with { Schema = Schema(8) }) });
    }
}
