using ParamDb.Server.Options;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>Unusable cluster options stop the start with one line naming the option; nothing is created.</summary>
public sealed class ClusterOptionsTests
{
    public static TheoryData<string[], string> Bad() => new()
    {
        { ["--node-id", "a b"], "--node-id: 'a b' is not a node id" },
        { ["--node-id", new string('n', 65)], "--node-id:" },
        { ["--raft", "localhost:7422"], "--raft: 'localhost:7422' is not an IP address and port" },
        { ["--raft", "127.0.0.1:0"], "--raft:" },
        { ["--join", "nowhere"], "--join: 'nowhere' is not HOST:PORT" },
        { ["--cluster-init", "--join", "127.0.0.1:7420"], "--cluster-init and --join exclude each other" },
        { ["--replicas", "0"], "--replicas must be 1 to 7; got 0" },
        { ["--vnodes", "0"], "--vnodes must be 1 to 4096; got 0" },
        { ["--down-after", "100"], "--down-after must be 300 to 60000 ms; got 100" },
        { ["--down-after", "60001"], "--down-after must be 300 to 60000 ms; got 60001" },
        { ["--resync-rate", "-1"], "--resync-rate must be 0 (no limit) to 100000 MiB/s; got -1" },
        { ["--resync-rate", "100001"], "--resync-rate must be 0 (no limit) to 100000 MiB/s; got 100001" },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void ABadClusterOptionStopsTheStartNamingIt(string[] options, string message)
    {
        string data = Testing.RunningServer.NewTempDirectory();
        var e = Assert.Throws<OptionsException>(() => ParamDbApp.Build(["--data", data, .. options]));
        Assert.StartsWith(message, e.Message);
        Assert.False(Directory.Exists(data));
    }
}
