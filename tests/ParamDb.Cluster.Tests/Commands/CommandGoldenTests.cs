using ParamDb.Cluster.Tests.Support;
using ParamDb.Cluster.Wire;
using static ParamDb.Cluster.Tests.Support.Samples;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Tests.Commands;

/// <summary>
/// The exact bytes of every command. These bytes are in Raft logs on disk: a change here breaks every member
/// replaying an old log. A layout may only grow — new fields under a higher version byte, or new command ids.
/// </summary>
public sealed class CommandGoldenTests
{
    public static TheoryData<string, ClusterCommand, string> Golden() => new()
    {
        {
            "InitCluster", Init(),
            "010001" + "5bad8f0fcbd99f46a16570867728950e" + "0300" + "4000" + NodeHex + "0000"
        },
        { "AddNode", new AddNode(Node("n2", 2, NodeState.Joining) with { Tokens = Tokens }), "020001" + Node2Hex + TokensHex },
        { "SetNodeState", new SetNodeState("n2", NodeState.Leaving), "030001" + "0200" + "6e32" + "03" },
        { "RemoveNode", new RemoveNode("n2"), "040001" + "0200" + "6e32" },
        {
            "CreateTable", new CreateTable("emb", Schema()),
            "050001" + "0300" + "656d62" + "43000000" +
            Convert.ToHexString("{\"dim\":4,\"init\":{\"kind\":\"zeros\"},\"updater\":{\"kind\":\"sgd\",\"lr\":0.5}}"u8).ToLowerInvariant()
        },
        { "DeleteTable", new DeleteTable("emb"), "060001" + "0300" + "656d62" },
        {
            "RegisterWorker", new RegisterWorker("w", ["emb", "bias"], 10_000),
            "070001" + "0100" + "77" + "0200" + "0300" + "656d62" + "0400" + "62696173" + "10270000"
        },
        { "RemoveWorker", new RemoveWorker(7, WorkerRemovalReason.LeaseExpired), "080001" + "07000000" + "01" },
        {
            "MarkStandIns", new MarkStandIns("n2", 5, [1, 0x0102030405060708]),
            "090001" + "0200" + "6e32" + "0500000000000000" + "02000000" + "0100000000000000" + "0807060504030201"
        },
    };

    // node := str16 id | str16 http | str16 h2 | str16 raft | u8 state | u16 n | n × u64 token (the tokens follow these constants)
    private const string NodeHex =
        "0200" + "6e31" +
        "0e00" + "3132372e302e302e313a38303830" +
        "0e00" + "3132372e302e302e313a38303831" +
        "0e00" + "3132372e302e302e313a37303030" +
        "01";

    private const string Node2Hex =
        "0200" + "6e32" +
        "0e00" + "3132372e302e302e323a38303830" +
        "0e00" + "3132372e302e302e323a38303831" +
        "0e00" + "3132372e302e302e323a37303030" +
        "00";

    [Theory]
    [MemberData(nameof(Golden))]
    public void Encodes_to_golden_bytes(string name, ClusterCommand command, string hex)
    {
        Assert.Equal(hex, Hex(CommandCodec.Encode(command)));
        Assert.Equal(name, command.Id.ToString());
    }

    [Theory]
    [MemberData(nameof(Golden))]
    public void Golden_bytes_decode_to_the_command(string name, ClusterCommand command, string hex)
    {
        var decoded = CommandCodec.Decode(Bytes(hex));
        Assert.Equal(command, decoded);
        Assert.Equal(hex, Hex(CommandCodec.Encode(decoded)));
        Assert.Equal(name, decoded.Id.ToString());
    }

    [Theory]
    [MemberData(nameof(Golden))]
    public void Every_truncation_is_rejected(string name, ClusterCommand command, string hex)
    {
        _ = command;
        byte[] bytes = Bytes(hex);
        for (int length = 0; length < bytes.Length; length++)
        {
            var e = Assert.Throws<MetadataFormatException>(() => CommandCodec.Decode(bytes.AsSpan(0, length)));
            Assert.Contains(length < 2 ? "Command header is truncated" : $"Command {name} is truncated", e.Message);
        }
    }

    [Theory]
    [MemberData(nameof(Golden))]
    public void Trailing_bytes_are_rejected(string name, ClusterCommand command, string hex)
    {
        _ = command;
        var e = Assert.Throws<MetadataFormatException>(() => CommandCodec.Decode(Bytes(hex + "00")));
        Assert.Contains($"Command {name}: 1 unexpected trailing bytes", e.Message);
    }

    [Theory]
    [InlineData("0000")]
    [InlineData("0a0001")]
    [InlineData("ffff01")]
    public void Unknown_command_ids_are_rejected(string hex)
    {
        var e = Assert.Throws<MetadataFormatException>(() => CommandCodec.Decode(Bytes(hex)));
        Assert.StartsWith("Unknown command id", e.Message);
    }

    [Fact]
    public void A_newer_body_version_is_rejected_not_guessed()
    {
        var e = Assert.Throws<MetadataFormatException>(() => CommandCodec.Decode(Bytes("040002" + "0200" + "6e32")));
        Assert.Equal("Command RemoveNode has body version 2; this build reads version 1.", e.Message);
    }

    [Fact]
    public void Invalid_utf8_is_rejected()
    {
        var e = Assert.Throws<MetadataFormatException>(() => CommandCodec.Decode(Bytes("040001" + "0200" + "c328")));
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Fact]
    public void A_node_state_out_of_range_is_rejected_when_decoding_a_node()
    {
        string hex = "020001" + Node2Hex[..^2] + "09";
        var e = Assert.Throws<MetadataFormatException>(() => CommandCodec.Decode(Bytes(hex)));
        Assert.Contains("unknown state 9", e.Message);
    }

    [Fact]
    public void Tokens_out_of_order_are_rejected_when_decoding_a_node()
    {
        string hex = "020001" + Node2Hex + "0200" + "0807060504030201" + "0500000000000000";
        var e = Assert.Throws<MetadataFormatException>(() => CommandCodec.Decode(Bytes(hex)));
        Assert.Contains("tokens out of order", e.Message);
    }

    [Fact]
    public void Ids_are_stable()
    {
        ushort[] ids = [.. Enum.GetValues<CommandId>().Select(id => (ushort)id)];
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9], ids);
    }
}
