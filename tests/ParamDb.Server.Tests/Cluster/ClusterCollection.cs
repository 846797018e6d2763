namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// The cluster tests run one after another and not beside other test classes: each starts three nodes (three
/// Raft members, three stores) on the machine's 2 cores, and under the whole suite's load a join took over a
/// minute.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "clusters";
}
