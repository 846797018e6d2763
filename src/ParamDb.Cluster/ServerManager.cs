using System.Net;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Metadata;
using ParamDb.Cluster.Raft;
using RaftNotLeaderException = DotNext.Net.Cluster.Consensus.Raft.NotLeaderException;

namespace ParamDb.Cluster;

/// <summary>
/// One member of the server manager: a small Raft group (DotNext.Net.Cluster over TCP) whose replicated state is
/// the cluster's metadata (<see cref="ClusterState"/>). The leader takes proposals; every member applies the
/// same log and exposes the same <see cref="State"/>.
/// <para>
/// Forming a group: the first member starts with <see cref="ServerManagerOptions.ColdStart"/> and becomes the
/// only voter and leader; each other member starts without it and waits until the leader calls
/// <see cref="AddMemberAsync"/>. A member restarted from its data directory rejoins with its saved member list.
/// </para>
/// <para>
/// Design note, not built yet: the group should have 3 or 5 voters. Nodes beyond those would join as data-only
/// members (DotNext's standby mode, <c>NodeConfiguration.Standby</c>): they receive the log and apply it, so
/// they have <see cref="State"/> locally, but never vote or lead, keeping elections and commits as cheap as a
/// 5-member group however many nodes serve data.
/// </para>
/// </summary>
public sealed partial class ServerManager : IAsyncDisposable
{
    /// <summary>Member-metadata key of the node id.</summary>
    public const string MetadataIdKey = "id";

    /// <summary>Member-metadata key of the node's HTTP address.</summary>
    public const string MetadataHttpKey = "http";

    private const int NotStarted = 0, Running = 1, Stopped = 2;

    private readonly ServerManagerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _lifetime = new();
    private int _phase;
    private MetadataStateMachine? _stateMachine;
    private WriteAheadLog? _wal;
    private MemberListStorage? _members;
    private RaftCluster? _cluster;

    /// <summary>A manager with the given options (validated now); nothing runs until <see cref="StartAsync"/>.</summary>
    public ServerManager(ServerManagerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = options.LoggerFactory?.CreateLogger<ServerManager>() ?? NullLogger<ServerManager>.Instance;
    }

    /// <summary>This member's node id.</summary>
    public string NodeId => _options.NodeId;

    /// <summary>This member's Raft endpoint.</summary>
    public IPEndPoint RaftEndPoint => _options.RaftEndPoint;

    /// <summary>The metadata as of the last entry applied on this member (a follower may lag: see <see cref="ReadBarrierAsync"/>).</summary>
    public ClusterState State => _stateMachine?.State ?? ClusterState.Empty;

    /// <summary>
    /// Raised with the new state after a command changed it or a snapshot replaced it, on the Raft applier:
    /// handlers must be quick and must not call back into the manager and wait. Exceptions are logged and dropped.
    /// </summary>
    public event Action<ClusterState>? StateChanged;

    /// <summary>
    /// True while this member leads and has committed an entry of its term (so it can serve reads and proposals).
    /// Not <c>Leader.IsRemote == false</c>: a leader that steps down keeps naming itself as leader until it
    /// hears of another, for up to an election timeout.
    /// </summary>
    public bool IsLeader => Volatile.Read(ref _phase) == Running && _cluster is { } cluster && HoldsLeadership(cluster);

    /// <summary>
    /// True while this member leads and holds Raft's leader lease: a majority answered its last heartbeat round
    /// within an election timeout, so no other member can have been elected since. Node leases are granted only then.
    /// </summary>
    public bool HoldsLeaderLease =>
        IsLeader && _cluster is { } cluster && cluster.TryGetLeaseToken(out CancellationToken lease) && !lease.IsCancellationRequested;

    /// <summary>
    /// Opens (or creates) the data directory, restores the newest state snapshot, replays the committed log and
    /// starts the Raft transport. Returns once this member serves; a member not yet added to a group waits there
    /// in standby until the leader adds it.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _phase, Running, NotStarted) != NotStarted)
            throw new InvalidOperationException("A server manager starts once.");
        string root = Path.Combine(Path.GetFullPath(_options.DataDirectory), "raft");
        Directory.CreateDirectory(root);
        try
        {
            _stateMachine = new MetadataStateMachine(new DirectoryInfo(Path.Combine(root, "state")), _logger);
            _stateMachine.StateChanged += OnStateChanged;
            // DotNext reads the restored snapshot's index in the WAL's constructor: restore first, or the whole log replays.
            await _stateMachine.RestoreAsync(cancellationToken).ConfigureAwait(false);
            _wal = new WriteAheadLog(new WriteAheadLog.Options { Location = Path.Combine(root, "wal") }, _stateMachine);
            _members = new MemberListStorage(Path.Combine(root, "members"));

            var configuration = new RaftCluster.TcpConfiguration(_options.RaftEndPoint)
            {
                ConfigurationStorage = _members,
                ColdStart = _options.ColdStart,
                LowerElectionTimeout = _options.LowerElectionTimeoutMs,
                UpperElectionTimeout = _options.UpperElectionTimeoutMs,
                // A joining member is caught up in this many replication rounds before it becomes a voter. DotNext's
                // default of 10 made a join take over a minute on a loaded 2-core machine (each round waits for the
                // slowest reply); the log is a few hundred entries of metadata, so 3 rounds catch it up.
                WarmupRounds = 3,
                // Node leases (docs/replication.md) are granted only while the leader holds its own: a majority
                // answered its heartbeats within an election timeout, so no other leader can exist meanwhile.
                IsLeaderLeaseEnabled = true,
                LoggerFactory = _options.LoggerFactory,
            };
            configuration.Metadata[MetadataIdKey] = _options.NodeId;
            if (_options.HttpEndPoint is { } http) configuration.Metadata[MetadataHttpKey] = http;

            _cluster = new RaftCluster(configuration) { AuditTrail = _wal };
            _cluster.LeaderChanged += OnLeaderChanged;
            await _cluster.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await ReleaseAsync().ConfigureAwait(false);
            Volatile.Write(ref _phase, Stopped);
            throw;
        }
        _logger.ManagerStarted(_options.NodeId, _options.RaftEndPoint.ToString(), _options.ColdStart, _options.DataDirectory);
    }

    /// <summary>Stops the transport and closes the log (flushed first); the data directory can be reopened by a new manager.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _phase, Stopped) != Running) return;
        await _lifetime.CancelAsync().ConfigureAwait(false);
        if (_cluster is { } cluster) await cluster.StopAsync(cancellationToken).ConfigureAwait(false);
        await ReleaseAsync().ConfigureAwait(false);
        _logger.ManagerStopped(_options.NodeId);
    }

    /// <summary>
    /// Proposes a command on the leader and returns its result once it is committed and applied here. The
    /// command is first <see cref="ClusterCommand.Prepare">prepared</see> (validated, normalized): a broken rule
    /// throws <see cref="ArgumentException"/> before anything is replicated.
    /// <para>
    /// How the result comes back: the entry is appended with a <c>ProposalContext</c> that DotNext hands, in
    /// memory, to this member's state machine together with the entry; applying the entry computes the result
    /// (the same on every member) and leaves it in the context, and <c>ReplicateAsync</c> returns only after that
    /// apply. No result is stored in the log or the state.
    /// </para>
    /// </summary>
    /// <exception cref="NotLeaderException">Another member leads (nothing was appended); it names the leader's HTTP address when known.</exception>
    /// <exception cref="NoLeaderException">No leader is known (nothing was appended).</exception>
    /// <exception cref="CommitUnknownException">This member stopped leading after the entry reached its log: it may still commit.</exception>
    public async Task<CommandResult> ProposeAsync(ClusterCommand command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var cluster = RequireRunning();
        byte[] payload = CommandCodec.Encode(command.Prepare());
        if (cluster.Leader is not { IsRemote: false })
            throw await NotLeaderErrorAsync(cluster, null, cancellationToken).ConfigureAwait(false);

        var context = new ProposalContext(payload);
        var entry = new BinaryLogEntry { Content = payload, Term = cluster.Term, Context = context };
        long lastBefore = _wal?.LastEntryIndex ?? 0;
        try
        {
            await cluster.ReplicateAsync(entry, cancellationToken).ConfigureAwait(false);
            // Committed: followers learn it with the next round of heartbeats, up to 150 ms away; send that round now,
            // so a failover's new ring reaches every node in one round trip.
            _ = ForceReplicationQuietlyAsync(cluster);
        }
        catch (RaftNotLeaderException e) when ((_wal?.LastEntryIndex ?? 0) > lastBefore)
        {
            // Leadership went after the entry reached this member's log: it may have reached a majority and commit
            // under the next leader, or not. Saying "not leader" would tell the caller nothing happened.
            throw new CommitUnknownException(e);
        }
        catch (RaftNotLeaderException e)
        {
            // Refused before anything was appended (DotNext checks leadership first).
            throw await NotLeaderErrorAsync(cluster, e, cancellationToken).ConfigureAwait(false);
        }
        return context.Result
               ?? throw new InvalidOperationException($"{command.Id} was replicated but this member applied other bytes at its index.");
    }

    private static async Task ForceReplicationQuietlyAsync(RaftCluster cluster)
    {
        try
        {
            await cluster.ForceReplicationAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or ObjectDisposedException or RaftNotLeaderException)
        {
            // No longer leading, or stopping: the next leader's heartbeats carry the commit.
        }
    }

    /// <summary>
    /// Waits until this member has applied everything the leader had committed when the call began, so the
    /// <see cref="State"/> read after it is current (linearizable). On the leader it confirms leadership with a
    /// round of heartbeats; on a follower it asks the leader for its commit index.
    /// </summary>
    /// <exception cref="NoLeaderException">No leader is known.</exception>
    public async Task ReadBarrierAsync(CancellationToken cancellationToken = default)
    {
        var cluster = RequireRunning();
        // A deposed leader still naming itself would make DotNext's barrier spin until an election settles.
        if (cluster.Leader is { IsRemote: false } && !HoldsLeadership(cluster)) throw new NoLeaderException();
        try
        {
            await cluster.ApplyReadBarrierAsync(ReadBarrierType.Strong, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuorumUnreachableException or RaftNotLeaderException)
        {
            throw new NoLeaderException(e);
        }
    }

    /// <summary>
    /// On the leader: adds a running, not-yet-member manager at <paramref name="raftEndPoint"/> as a voter, first
    /// catching it up with the log. False when it already is a member or could not catch up.
    /// </summary>
    /// <exception cref="NotLeaderException">Another member leads.</exception>
    /// <exception cref="NoLeaderException">No leader is known.</exception>
    public Task<bool> AddMemberAsync(string nodeId, IPEndPoint raftEndPoint, CancellationToken cancellationToken = default) =>
        ChangeMembershipAsync(nodeId, raftEndPoint, add: true, cancellationToken);

    /// <summary>On the leader: removes the voter at <paramref name="raftEndPoint"/>. False when it is not a member.</summary>
    /// <exception cref="NotLeaderException">Another member leads.</exception>
    /// <exception cref="NoLeaderException">No leader is known.</exception>
    public Task<bool> RemoveMemberAsync(string nodeId, IPEndPoint raftEndPoint, CancellationToken cancellationToken = default) =>
        ChangeMembershipAsync(nodeId, raftEndPoint, add: false, cancellationToken);

    /// <summary>Stops the manager if it runs.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await ReleaseAsync().ConfigureAwait(false);
        _lifetime.Dispose();
    }

    private async Task<bool> ChangeMembershipAsync(string nodeId, IPEndPoint raftEndPoint, bool add, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodeId);
        ArgumentNullException.ThrowIfNull(raftEndPoint);
        var cluster = RequireRunning();
        if (cluster.Leader is not { IsRemote: false })
            throw await NotLeaderErrorAsync(cluster, null, cancellationToken).ConfigureAwait(false);
        bool done;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                done = add
                    ? await cluster.AddMemberAsync(raftEndPoint, cancellationToken).ConfigureAwait(false)
                    : await cluster.RemoveMemberAsync(raftEndPoint, cancellationToken).ConfigureAwait(false);
            }
            catch (RaftNotLeaderException e)
            {
                throw await NotLeaderErrorAsync(cluster, e, cancellationToken).ConfigureAwait(false);
            }
            _logger.MembershipChanged(nodeId, raftEndPoint.ToString(), add ? "add" : "remove", done);
            // An add that is false for a node not yet a voter is a catch-up that failed (on two loaded cores a new
            // member's warm-up round can time out): try again, up to three times, rather than leave it in the ring
            // without a vote or a log.
            if (done || !add || attempt == MaxAddAttempts || IsVoter(cluster, raftEndPoint)) return done;
        }
    }

    /// <summary>Tries of an add whose new member did not catch up (<see cref="ChangeMembershipAsync"/>).</summary>
    private const int MaxAddAttempts = 3;

    private static bool IsVoter(RaftCluster cluster, IPEndPoint raftEndPoint)
    {
        foreach (var member in cluster.Members)
            if (EndPointEquals(member.EndPoint, raftEndPoint)) return true;
        return false;
    }

    private static bool HoldsLeadership(RaftCluster cluster)
    {
        try
        {
            return !cluster.LeadershipToken.IsCancellationRequested;
        }
        catch (Exception)
        {
            return false; // DotNext's zombie state (a fatal WAL failure) throws here; such a member leads nothing.
        }
    }

    private RaftCluster RequireRunning() =>
        Volatile.Read(ref _phase) == Running && _cluster is { } cluster
            ? cluster
            : throw new InvalidOperationException("The server manager is not running.");

    private void OnStateChanged(ClusterState state)
    {
        if (StateChanged is not { } handlers) return;
        foreach (Action<ClusterState> handler in handlers.GetInvocationList())
        {
            try
            {
                handler(state);
            }
            catch (Exception e)
            {
                _logger.StateChangedHandlerFailed(e);
            }
        }
    }

    /// <summary>Disposes, in order, whatever <see cref="StartAsync"/> created; safe to call twice.</summary>
    private async ValueTask ReleaseAsync()
    {
        if (Interlocked.Exchange(ref _cluster, null) is { } cluster)
        {
            cluster.LeaderChanged -= OnLeaderChanged;
            await cluster.DisposeAsync().ConfigureAwait(false);
        }
        if (Interlocked.Exchange(ref _wal, null) is { } wal)
        {
            try
            {
                await wal.FlushAsync().ConfigureAwait(false);
            }
            finally
            {
                await wal.DisposeAsync().ConfigureAwait(false);
            }
        }
        // The state machine is kept (not nulled) so State stays readable after a stop.
        if (_stateMachine is { } stateMachine) await stateMachine.DisposeAsync().ConfigureAwait(false);
        Interlocked.Exchange(ref _members, null)?.Dispose();
        _leader = null;
    }
}
