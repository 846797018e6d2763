using static ParamDb.Cluster.Tests.Support.Samples;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Tests.Commands;

/// <summary>What each command does to a state, and the result its proposer reads.</summary>
public sealed class CommandApplyTests
{
    private static ClusterState Apply(ClusterState state, ClusterCommand command, out CommandResult result) =>
        command.Apply(state, out result);

    private static ClusterState Initialized() => Apply(ClusterState.Empty, Init(), out _);

    [Fact]
    public void InitCluster_fixes_id_r_v_and_the_first_node_at_epoch_1()
    {
        var state = Apply(ClusterState.Empty, Init(), out var result);
        Assert.Equal(CommandOutcome.Applied, result.Outcome);
        Assert.Equal(1UL, result.RingEpoch);
        Assert.Equal((ClusterId, 3, 64, 1UL), (state.ClusterId, state.Replicas, state.VirtualNodes, state.RingEpoch));
        Assert.Equal(Node(), Assert.Single(state.Nodes).Value);
    }

    [Fact]
    public void InitCluster_again_is_already_exists_and_with_another_id_a_conflict()
    {
        var state = Initialized();
        Assert.Same(state, Apply(state, Init(), out var again));
        Assert.Equal(CommandOutcome.AlreadyExists, again.Outcome);
        Assert.Same(state, Apply(state, Init() with { ClusterId = Guid.NewGuid() }, out var other));
        Assert.Equal(CommandOutcome.Conflict, other.Outcome);
    }

    [Fact]
    public void Commands_before_init_are_no_ops()
    {
        Assert.Same(ClusterState.Empty, Apply(ClusterState.Empty, new CreateTable("t", Schema()), out var result));
        Assert.Equal(CommandOutcome.NotInitialized, result.Outcome);
        Assert.False(result.Succeeded);
    }

    [Fact]
    public void Node_changes_bump_the_epoch_once_each()
    {
        var state = Initialized();
        state = Apply(state, new AddNode(Node("n2", 2, NodeState.Joining)), out var added);
        Assert.Equal((CommandOutcome.Applied, 2UL), (added.Outcome, added.RingEpoch));
        state = Apply(state, new SetNodeState("n2", NodeState.Up), out var up);
        Assert.Equal((CommandOutcome.Applied, 3UL), (up.Outcome, up.RingEpoch));
        state = Apply(state, new SetNodeState("n2", NodeState.Up), out var same);
        Assert.Equal((CommandOutcome.Unchanged, 3UL), (same.Outcome, same.RingEpoch));
        state = Apply(state, new RemoveNode("n2"), out var removed);
        Assert.Equal((CommandOutcome.Applied, 4UL), (removed.Outcome, removed.RingEpoch));
        Assert.Equal(["n1"], state.Nodes.Keys);
    }

    [Fact]
    public void A_node_declared_down_while_up_remembers_the_epoch_and_keeps_it_until_it_leaves_up_again()
    {
        var state = Initialized();
        state = Apply(state, new AddNode(Node("n2", 2, NodeState.Joining)), out _);
        state = Apply(state, new SetNodeState("n2", NodeState.Up), out _);   // epoch 3
        Assert.Equal(0UL, state.Nodes["n2"].LeftUpAt);
        state = Apply(state, new SetNodeState("n2", NodeState.Down), out var down);   // epoch 4: it left up
        Assert.Equal((4UL, 4UL), (down.RingEpoch, state.Nodes["n2"].LeftUpAt));
        state = Apply(state, new SetNodeState("n2", NodeState.Joining), out _);   // back, not caught up
        state = Apply(state, new SetNodeState("n2", NodeState.Down), out _);      // down again from joining: proves nothing new
        Assert.Equal(4UL, state.Nodes["n2"].LeftUpAt);
        state = Apply(state, new SetNodeState("n2", NodeState.Joining), out _);
        state = Apply(state, new SetNodeState("n2", NodeState.Up), out _);
        state = Apply(state, new SetNodeState("n2", NodeState.Down), out var again);
        Assert.Equal(again.RingEpoch, state.Nodes["n2"].LeftUpAt);
        Assert.Equal(9UL, again.RingEpoch);
    }

    [Fact]
    public void Node_conflicts_and_unknown_nodes_are_no_ops_with_a_reason()
    {
        var state = Initialized();
        Assert.Same(state, Apply(state, new AddNode(Node()), out var same));
        Assert.Equal(CommandOutcome.AlreadyExists, same.Outcome);
        Assert.Same(state, Apply(state, new AddNode(Node() with { Http = "10.0.0.1:1" }), out var moved));
        Assert.Equal(CommandOutcome.Conflict, moved.Outcome);
        Assert.Same(state, Apply(state, new AddNode(Node("n9") ), out var sameRaft));
        Assert.Equal(CommandOutcome.Conflict, sameRaft.Outcome);
        Assert.Contains("belongs to node n1", sameRaft.Detail);
        Assert.Same(state, Apply(state, new SetNodeState("nx", NodeState.Down), out var unknown));
        Assert.Equal(CommandOutcome.NotFound, unknown.Outcome);
        Assert.Same(state, Apply(state, new RemoveNode("nx"), out var gone));
        Assert.Equal(CommandOutcome.NotFound, gone.Outcome);
        Assert.Equal(1UL, state.RingEpoch);
    }

    [Fact]
    public void Tables_get_growing_ids_that_are_never_reused()
    {
        var state = Initialized();
        state = Apply(state, new CreateTable("a", Schema()), out var a);
        state = Apply(state, new CreateTable("b", Schema(8)), out var b);
        Assert.Equal((CommandOutcome.Created, 1u), (a.Outcome, a.Id));
        Assert.Equal((CommandOutcome.Created, 2u), (b.Outcome, b.Id));

        state = Apply(state, new CreateTable("a", Schema()), out var again);
        Assert.Equal((CommandOutcome.AlreadyExists, 1u), (again.Outcome, again.Id));
        state = Apply(state, new CreateTable("a", Schema(16)), out var conflict);
        Assert.Equal((CommandOutcome.Conflict, 1u), (conflict.Outcome, conflict.Id));

        state = Apply(state, new DeleteTable("a"), out var deleted);
        Assert.Equal((CommandOutcome.Applied, 1u), (deleted.Outcome, deleted.Id));
        state = Apply(state, new CreateTable("a", Schema()), out var recreated);
        Assert.Equal((CommandOutcome.Created, 3u), (recreated.Outcome, recreated.Id));
        Apply(state, new DeleteTable("zz"), out var missing);
        Assert.Equal(CommandOutcome.NotFound, missing.Outcome);
        Assert.Equal(4u, state.NextTableId);
        Assert.Equal(1UL, state.RingEpoch);
    }

    [Fact]
    public void Workers_get_growing_ids_and_removal_of_an_unknown_one_is_harmless()
    {
        var state = Initialized();
        state = Apply(state, new RegisterWorker("w", [], 1_000), out var w1);
        state = Apply(state, new RegisterWorker("w", ["t"], 2_000), out var w2);
        Assert.Equal((CommandOutcome.Created, 1u), (w1.Outcome, w1.Id));
        Assert.Equal((CommandOutcome.Created, 2u), (w2.Outcome, w2.Id));
        Assert.Equal(new WorkerEntry(2, "w", ["t"], 2_000), state.Workers[2]);

        state = Apply(state, new RemoveWorker(1, WorkerRemovalReason.LeaseExpired), out var removed);
        Assert.Equal(CommandOutcome.Applied, removed.Outcome);
        Assert.Same(state, Apply(state, new RemoveWorker(1, WorkerRemovalReason.Deregistered), out var twice));
        Assert.Equal(CommandOutcome.NotFound, twice.Outcome);
        Assert.Equal([2u], state.Workers.Keys);
        Assert.Equal(3u, state.NextWorkerId);
    }

    [Fact]
    public void Prepare_normalizes_the_schema_and_rejects_broken_rules()
    {
        var raw = new CreateTable("t", new TableSchema { Dim = 4 });
        var prepared = Assert.IsType<CreateTable>(raw.Prepare());
        Assert.Equal(InitializerSpec.Zeros, prepared.Schema.Init!.Kind);
        Assert.Equal(UpdaterSpec.Add, prepared.Schema.Updater!.Kind);

        Assert.Throws<ArgumentException>(() => new CreateTable("t", new TableSchema { Dim = 0 }).Prepare());
        Assert.Throws<ArgumentException>(() => new CreateTable("a/b", Schema()).Prepare());
        Assert.Throws<ArgumentException>(() => new AddNode(Node("bad id")).Prepare());
        Assert.Throws<ArgumentException>(() => new AddNode(Node() with { Raft = "no-port" }).Prepare());
        Assert.Throws<ArgumentException>(() => new RegisterWorker("w", [], 5).Prepare());
        Assert.Throws<ArgumentException>(() => new InitCluster(Guid.Empty, 3, 64, Node()).Prepare());
        Assert.Throws<ArgumentException>(() => new RemoveWorker(0, WorkerRemovalReason.Operator).Prepare());
    }

    [Fact]
    public void A_command_breaking_a_rule_that_reaches_the_log_applies_as_invalid()
    {
        var state = Initialized();
        Assert.Same(state, Apply(state, new AddNode(Node("bad id")), out var result));
        Assert.Equal(CommandOutcome.Invalid, result.Outcome);
        Assert.Contains("bad id", result.Detail);
    }

    [Theory]
    [InlineData("127.0.0.1:80", true)]
    [InlineData("node-1.example:65535", true)]
    [InlineData("[::1]:7000", true)]
    [InlineData("::1:7000", false)]
    [InlineData("host:0", false)]
    [InlineData("host:65536", false)]
    [InlineData(":80", false)]
    [InlineData("host", false)]
    [InlineData("ho st:80", false)]
    public void Addresses_are_host_colon_port(string address, bool valid) =>
        Assert.Equal(valid, NodeInfo.IsValidAddress(address));
}
