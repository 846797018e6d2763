using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Tests.Support;

/// <summary>Fixed values the golden tests encode; changing one changes the golden bytes.</summary>
internal static class Samples
{
    public static readonly Guid ClusterId = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");

    public static NodeInfo Node(string id = "n1", int octet = 1, NodeState state = NodeState.Up) =>
        new(id, $"127.0.0.{octet}:8080", $"127.0.0.{octet}:8081", $"127.0.0.{octet}:7000", state);

    /// <summary>Two tokens, the second with every byte distinct so the byte order shows in the golden hex.</summary>
    public static readonly ulong[] Tokens = [5, 0x0102030405060708];

    /// <summary>Their bytes: u16 count, then each u64 little-endian.</summary>
    public const string TokensHex = "0200" + "0500000000000000" + "0807060504030201";

    /// <summary>Normalized: {"dim":4,"init":{"kind":"zeros"},"updater":{"kind":"sgd","lr":0.5}}.</summary>
    public static TableSchema Schema(int dim = 4) =>
        Normalized(new TableSchema { Dim = dim, Updater = new UpdaterSpec { Kind = UpdaterSpec.Sgd, Lr = 0.5 } });

    public static TableSchema Normalized(TableSchema schema) =>
        schema.TryNormalize(out var normalized, out var error) ? normalized : throw new ArgumentException(error.Detail);

    public static InitCluster Init() => new(ClusterId, 3, 64, Node());

    public static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    public static byte[] Bytes(string hex) => Convert.FromHexString(hex);
}
