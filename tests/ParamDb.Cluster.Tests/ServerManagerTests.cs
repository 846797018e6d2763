using System.Collections.Concurrent;
using System.Diagnostics;
using ParamDb.Cluster.Tests.Support;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Tests;

/// <summary>
/// Tier 1: three server managers in this process, over real TCP on 127.0.0.1–3. Every wait has a deadline;
/// timings go to the test output.
/// </summary>
public sealed class ServerManagerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = ManagerGroup.Deadline;

    private static CreateTable Table(string name, int dim = 8) => new(name, new TableSchema { Dim = dim });

    [Fact]
    public async Task Three_members_form_and_all_apply_a_table_proposed_on_the_leader()
    {
        await using var group = new ManagerGroup(output);
        var clock = Stopwatch.StartNew();
        await group.FormAsync();
        var formed = clock.Elapsed;
        var (l, f1, f2) = Roles(group);
        var changes = new ConcurrentQueue<ClusterState>();
        group[f2].StateChanged += changes.Enqueue;

        var result = await group[l].ProposeAsync(Table("emb"));
        Assert.Equal((CommandOutcome.Created, 1u), (result.Outcome, result.Id));
        Assert.Equal(3UL, result.RingEpoch);
        var proposed = clock.Elapsed;

        // A read barrier on a follower makes the committed table visible there at once.
        await group[f2].ReadBarrierAsync();
        Assert.True(group[f2].State.Tables.ContainsKey("emb"));
        Assert.Contains(changes, state => state.Tables.ContainsKey("emb"));
        await Eventually.TrueAsync(() => group.Running.All(i => group[i].State.Tables.ContainsKey("emb")), Deadline,
            "all three members applied table emb");
        var everywhere = clock.Elapsed;

        Assert.All(group.Running, i => Assert.Equal(group[l].State, group[i].State));
        Assert.All(group.Running, i => Assert.Equal(i == l, group[i].IsLeader));
        await Eventually.TrueAsync(() => group[f1].LeaderHttp == ManagerGroup.Http(l) && group[f1].LeaderId == $"n{l + 1}", Deadline,
            "a follower names the leader's id and http address");
        output.WriteLine($"formation (cold start, init, 2 adds, 2 AddNode): {formed.TotalMilliseconds:0} ms; " +
                         $"CreateTable committed after {(proposed - formed).TotalMilliseconds:0} ms; on all three after {(everywhere - formed).TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task A_new_leader_is_elected_when_the_leader_stops_and_takes_proposals()
    {
        // DotNext's default election timeouts, to measure the failover production would see.
        await using var group = new ManagerGroup(output, lowerElectionMs: 150, upperElectionMs: 300);
        await group.FormAsync();
        await group.OnLeaderAsync(m => m.ProposeAsync(Table("before")));
        int old = group.LeaderIndex();
        Assert.NotEqual(-1, old);
        int[] others = [.. group.Running.Where(i => i != old)];

        var clock = Stopwatch.StartNew();
        await group.StopAsync(old);
        var stopped = clock.Elapsed;
        // Elected: a remaining member names itself leader. Serving: it has also committed an entry of its term.
        var elected = await Eventually.TrueAsync(
            () => others.Any(i => group[i].LeaderRaftEndPoint?.Equals(group.Raft(i)) == true), Deadline, "a remaining member is elected") + stopped;
        var leader = await group.LeaderAmongAsync(others, Deadline);
        var serving = clock.Elapsed;
        output.WriteLine($"leader n{old + 1} stopped in {stopped.TotalMilliseconds:0} ms; {leader.NodeId} elected " +
                         $"{(elected - stopped).TotalMilliseconds:0} ms later and serving after {(serving - stopped).TotalMilliseconds:0} ms " +
                         $"({serving.TotalMilliseconds:0} ms after the stop began)");

        var result = await leader.ProposeAsync(Table("after"));
        Assert.Equal((CommandOutcome.Created, 2u), (result.Outcome, result.Id));
        await Eventually.TrueAsync(() => group.Running.All(i => group[i].State.Tables.Keys.SequenceEqual(["after", "before"])), Deadline,
            "both remaining members applied the proposal of the new leader");
        output.WriteLine($"first proposal on the new leader committed {(clock.Elapsed - serving).TotalMilliseconds:0} ms after it began serving");
    }

    [Fact]
    public async Task A_member_restarted_from_its_directory_catches_up_on_missed_commands()
    {
        await using var group = new ManagerGroup(output);
        await group.FormAsync();
        var (l, _, f) = Roles(group);
        await group[l].ProposeAsync(Table("seen"));
        await Eventually.TrueAsync(() => group[f].State.Tables.ContainsKey("seen"), Deadline, $"n{f + 1} applied table seen");
        await group.StopAsync(f);

        Assert.Equal(CommandOutcome.Created, (await group[l].ProposeAsync(Table("missed1"))).Outcome);
        Assert.Equal(CommandOutcome.Created, (await group[l].ProposeAsync(Table("missed2"))).Outcome);
        Assert.Equal(CommandOutcome.Applied, (await group[l].ProposeAsync(new SetNodeState($"n{f + 1}", NodeState.Down))).Outcome);

        var clock = Stopwatch.StartNew();
        var restarted = await group.StartAsync(f);
        // What it had applied before the stop comes back from its own disk, before it hears from the leader.
        Assert.True(restarted.State.Tables.ContainsKey("seen"));
        await Eventually.TrueAsync(() => restarted.State.Equals(group[l].State), Deadline, $"the restarted n{f + 1} has the leader's state");
        output.WriteLine($"n{f + 1} restarted without cold start and caught up on 3 commands in {clock.ElapsedMilliseconds} ms");
        Assert.Equal(NodeState.Down, restarted.State.Nodes[$"n{f + 1}"].State);
        Assert.Equal(["missed1", "missed2", "seen"], restarted.State.Tables.Keys);
        Assert.False(restarted.IsLeader);
    }

    [Fact]
    public async Task Proposing_on_a_follower_throws_NotLeader_naming_the_leaders_http()
    {
        await using var group = new ManagerGroup(output);
        await group.FormAsync();
        var (l, f1, f2) = Roles(group);

        var e = await Assert.ThrowsAsync<NotLeaderException>(() => group[f1].ProposeAsync(Table("nope")));
        Assert.Equal(ManagerGroup.Http(l), e.LeaderHttp);
        Assert.Equal($"n{l + 1}", e.LeaderId);
        var add = await Assert.ThrowsAsync<NotLeaderException>(() => group[f2].AddMemberAsync("n9", group.Raft(l)));
        Assert.Equal(ManagerGroup.Http(l), add.LeaderHttp);

        await group[l].ReadBarrierAsync();
        Assert.False(group[l].State.Tables.ContainsKey("nope"));
    }

    [Fact]
    public async Task A_leader_without_a_quorum_steps_down_and_answers_NoLeader()
    {
        await using var group = new ManagerGroup(output);
        await group.FormAsync();
        var (l, f1, f2) = Roles(group);
        await group.StopAsync(f1);
        await group.StopAsync(f2);

        var alone = group[l];
        var clock = Stopwatch.StartNew();
        await Eventually.TrueAsync(() => !alone.IsLeader && alone.LeaderId is null, Deadline, $"n{l + 1} alone stops leading");
        output.WriteLine($"n{l + 1} stepped down {clock.ElapsedMilliseconds} ms after losing both followers");
        await Assert.ThrowsAsync<NoLeaderException>(() => alone.ProposeAsync(Table("x")));
        await Assert.ThrowsAsync<NoLeaderException>(() => alone.ReadBarrierAsync());
        Assert.False(alone.State.Tables.ContainsKey("x"));
    }

    /// <summary>The leader and the two followers, after formation (usually n1, n2, n3; a hiccup while forming may move the lead).</summary>
    private static (int Leader, int Follower1, int Follower2) Roles(ManagerGroup group)
    {
        int leader = group.LeaderIndex();
        Assert.NotEqual(-1, leader);
        int[] followers = [.. group.Running.Where(i => i != leader)];
        return (leader, followers[0], followers[1]);
    }
}
