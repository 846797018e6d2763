using System.Diagnostics;
using System.Net;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Tests.Support;

/// <summary>
/// A server-manager group in this process over real TCP: member i is node <c>n{i+1}</c> on 127.0.0.{i+1} at one
/// port picked for the test, with its own data directory under one temp folder. Forming follows the production
/// path: n1 cold-starts, initializes the cluster, then adds each other member to Raft and to the node table.
/// <para>
/// Election timeouts default to 300–600 ms here, twice DotNext's 150–300: the test machine has two cores shared
/// with other builds, and a leader whose one follower misses a single 150 ms request timeout steps down (a
/// replication round without a quorum deposes it), which a group of two meets while forming.
/// </para>
/// </summary>
internal sealed class ManagerGroup : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private readonly ITestOutputHelper _output;
    private readonly TempDirectory _dir = new("paramdb-raft");
    private readonly ServerManager?[] _members;
    private readonly int _lowerElectionMs, _upperElectionMs;

    public ManagerGroup(ITestOutputHelper output, int size = 3, int lowerElectionMs = 300, int upperElectionMs = 600)
    {
        _output = output;
        _members = new ServerManager?[size];
        (_lowerElectionMs, _upperElectionMs) = (lowerElectionMs, upperElectionMs);
        Port = ParamDb.Testing.LoopbackPorts.Triple(size);
        output.WriteLine($"group of {size} on port {Port}, elections {lowerElectionMs}–{upperElectionMs} ms, data in {_dir.Path}");
    }

    public int Port { get; }

    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    public ServerManager this[int i] => _members[i] ?? throw new InvalidOperationException($"Member n{i + 1} is not running.");

    public IEnumerable<int> Running => Enumerable.Range(0, _members.Length).Where(i => _members[i] is not null);

    public static string Http(int i) => $"127.0.0.{i + 1}:{18_080 + i}";

    public IPEndPoint Raft(int i) => new(IPAddress.Parse($"127.0.0.{i + 1}"), Port);

    public NodeInfo Node(int i, NodeState state = NodeState.Up) =>
        new($"n{i + 1}", Http(i), $"127.0.0.{i + 1}:{19_080 + i}", $"127.0.0.{i + 1}:{Port}", state);

    public async Task<ServerManager> StartAsync(int i, bool coldStart = false)
    {
        if (_members[i] is not null) throw new InvalidOperationException($"Member n{i + 1} is running.");
        var manager = new ServerManager(new ServerManagerOptions
        {
            NodeId = $"n{i + 1}",
            RaftEndPoint = Raft(i),
            DataDirectory = _dir.Sub($"n{i + 1}"),
            ColdStart = coldStart,
            HttpEndPoint = Http(i),
            LowerElectionTimeoutMs = _lowerElectionMs,
            UpperElectionTimeoutMs = _upperElectionMs,
            LoggerFactory = new TestLoggerFactory(_output, $"n{i + 1}", Clock),
        });
        await manager.StartAsync();
        _members[i] = manager;
        return manager;
    }

    public async Task StopAsync(int i)
    {
        var manager = this[i];
        _members[i] = null;
        await manager.DisposeAsync();
    }

    /// <summary>Starts every member and forms the group around n1; returns when every member has applied every node.</summary>
    public async Task FormAsync(Guid? clusterId = null)
    {
        var first = await StartAsync(0, coldStart: true);
        await Eventually.TrueAsync(() => first.IsLeader, Deadline, "the cold-started member leads");
        var init = new InitCluster(clusterId ?? Guid.NewGuid(), 3, 64, Node(0));
        Assert.True((await OnLeaderAsync(m => m.ProposeAsync(init))).Succeeded);
        for (int i = 1; i < _members.Length; i++)
        {
            await StartAsync(i);
            int member = i;
            // A retry after a lost answer may find the member already added (false): the state check below tells.
            await OnLeaderAsync(m => m.AddMemberAsync($"n{member + 1}", Raft(member)));
            Assert.True((await OnLeaderAsync(m => m.ProposeAsync(new AddNode(Node(member))))).Succeeded);
        }
        await Eventually.TrueAsync(() => Running.All(i => this[i].State.Nodes.Count == _members.Length), Deadline,
            "every member applied every node");
    }

    /// <summary>
    /// Runs <paramref name="operation"/> on the member that leads, and again on the next leader if leadership moves
    /// while it runs (the operations used are safe to repeat).
    /// </summary>
    public async Task<T> OnLeaderAsync<T>(Func<ServerManager, Task<T>> operation)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var leader = await LeaderAmongAsync(Running, Deadline);
            try
            {
                return await operation(leader);
            }
            catch (Exception e) when (e is NoLeaderException or NotLeaderException or CommitUnknownException && clock.Elapsed < Deadline)
            {
                _output.WriteLine($"{Clock.ElapsedMilliseconds,6} ms leadership moved under {leader.NodeId} ({e.Message}); retrying on the next leader");
                await Task.Delay(20); // back off: the old leader may still look like one for a moment
            }
        }
    }

    /// <summary>The index of the member that leads now, or -1.</summary>
    public int LeaderIndex() => Running.FirstOrDefault(i => this[i].IsLeader, -1);

    /// <summary>The member among <paramref name="candidates"/> that leads, once one does.</summary>
    public Task<ServerManager> LeaderAmongAsync(IEnumerable<int> candidates, TimeSpan deadline)
    {
        int[] among = [.. candidates];
        return Eventually.SomeAsync(() => among.Select(i => _members[i]).FirstOrDefault(m => m?.IsLeader == true), deadline,
            $"one of {string.Join(", ", among.Select(i => $"n{i + 1}"))} leads");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (int i in Running.ToArray()) await StopAsync(i);
        _dir.Dispose();
    }
}
