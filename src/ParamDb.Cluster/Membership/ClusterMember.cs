using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Liveness;
using ParamDb.Cluster.Metadata;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Membership;

/// <summary>
/// This node's place in its cluster: its identity, its member of the server manager, and the ring as the
/// manager's state has it. <see cref="StartAsync"/> founds a cluster (<c>--cluster-init</c>), joins one
/// (<c>--join</c>) or rejoins the one the data folder belongs to (no flag); <see cref="AdmitAsync"/> is the leader's
/// half of a join.
/// </summary>
public sealed partial class ClusterMember : IAsyncDisposable
{
    private readonly ClusterOptions _options;
    private readonly ILogger _logger;
    private readonly ServerManager _manager;
    private readonly PeerHttp _peers;
    private readonly Lock _ringLock = new();
    private ClusterRing? _ring;
    private NodeIdentity _identity;
    private FailureDetector? _detector;
    private NodeLease? _lease;

    private ClusterMember(ClusterOptions options, NodeIdentity identity, ServerManager manager, ILogger logger)
    {
        _options = options;
        _identity = identity;
        _manager = manager;
        _logger = logger;
        _peers = new PeerHttp(options.Secret, identity.NodeId);
        _manager.StateChanged += OnStateChanged;
    }

    /// <summary>Who this node is in the cluster.</summary>
    public NodeIdentity Identity => _identity;

    /// <summary>This node's member of the server manager.</summary>
    public ServerManager Manager => _manager;

    /// <summary>HTTP requests to other members.</summary>
    public PeerHttp Peers => _peers;

    /// <summary>The options the node started with.</summary>
    public ClusterOptions Options => _options;

    /// <summary>The leader's failure detector (idle on followers): grants heartbeats and declares nodes down.</summary>
    public FailureDetector Detector => _detector ?? throw new InvalidOperationException("The node has not settled in its cluster yet.");

    /// <summary>This node's lease: whether it may act as a primary now.</summary>
    public NodeLease Lease => _lease ?? throw new InvalidOperationException("The node has not settled in its cluster yet.");

    /// <summary>
    /// What this node's heartbeat reports: the joining nodes it has caught up, and the epoch (set by its replicator
    /// while the store is open).
    /// </summary>
    public Func<(ulong Epoch, List<string> CaughtUp)>? CaughtUpReport { get; set; }

    /// <summary>The ring of the newest state this node has applied; null before the state names any node.</summary>
    public ClusterRing? Ring => Volatile.Read(ref _ring);

    /// <summary>Raised after <see cref="Ring"/> changed (a new epoch), on the manager's applier.</summary>
    public event Action<ClusterRing>? RingChanged;

    /// <summary>
    /// Takes this node's place in the cluster: founds it, joins it or rejoins it. Returns null when the options ask
    /// for none of these and the data folder belongs to no cluster: the node runs alone.
    /// </summary>
    /// <exception cref="ClusterStartException">The node cannot take its place; the message says why and what to do.</exception>
    public static async Task<ClusterMember?> StartAsync(ClusterOptions options, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ILogger logger = loggers.CreateLogger("ParamDb.Cluster");
        NodeIdentity? identity;
        try
        {
            identity = NodeIdentity.Load(options.DataDirectory);
        }
        catch (InvalidDataException e)
        {
            throw new ClusterStartException(e.Message, e);
        }
        if (identity is null && !options.Init && options.Join is null) return null;
        if (identity is not null) CheckRejoin(options, identity);
        else if (options.Init) identity = Found(options);

        var manager = new ServerManager(new ServerManagerOptions
        {
            NodeId = identity?.NodeId ?? options.NodeId,
            RaftEndPoint = options.RaftEndPoint,
            DataDirectory = options.DataDirectory,
            ColdStart = options.Init && identity is not null,
            HttpEndPoint = options.Http,
            LowerElectionTimeoutMs = options.LowerElectionTimeoutMs,
            UpperElectionTimeoutMs = options.UpperElectionTimeoutMs,
            LoggerFactory = loggers,
        });
        try
        {
            await manager.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await manager.DisposeAsync().ConfigureAwait(false);
            throw new ClusterStartException($"The server manager could not start on --raft {options.RaftEndPoint}: {e.Message}", e);
        }
        try
        {
            identity ??= await JoinAsync(options, manager, cancellationToken).ConfigureAwait(false);
            var node = new ClusterMember(options, identity, manager, logger);
            await node.SettleAsync(cancellationToken).ConfigureAwait(false);
            node._detector = new FailureDetector(node, logger);
            node._lease = new NodeLease(node, node._detector, logger);
            logger.ClusterNodeStarted(identity.NodeId, identity.ClusterId, node.Ring?.Epoch ?? 0, node.Ring?.NodeCount ?? 0);
            return node;
        }
        catch
        {
            await manager.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A restart: the folder's identity rules, and flags that would found or join again are refused.</summary>
    private static void CheckRejoin(ClusterOptions options, NodeIdentity identity)
    {
        string where = $"{options.DataDirectory} belongs to cluster {identity.ClusterId} as node '{identity.NodeId}'";
        if (options.Init) throw new ClusterStartException($"--cluster-init: {where}. Restart without --cluster-init to rejoin it, or give an empty --data to found a new cluster.");
        if (options.Join is not null) throw new ClusterStartException($"--join: {where}. Restart without --join to rejoin it, or give an empty --data to join another cluster.");
    }

    /// <summary>The identity of a cluster's first node; its tokens are a hash of its id, as a single node's are.</summary>
    private static NodeIdentity Found(ClusterOptions options)
    {
        foreach (string part in (string[])["checkpoints", "wal"])
        {
            string path = Path.Combine(options.DataDirectory, part);
            if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
                throw new ClusterStartException($"--cluster-init: {options.DataDirectory} holds a single node's data ({part}/). Found the cluster on an empty --data and load tables into it with paramdb import.");
        }
        ulong[] tokens = Protocol.Ring.ForNode(options.NodeId, options.VirtualNodes).Tokens.ToArray();
        var identity = new NodeIdentity(Guid.NewGuid(), options.NodeId, options.Replicas, options.VirtualNodes, tokens);
        // Saved before the manager starts: a crash in between restarts as the founder, which then commits the init.
        identity.Save(options.DataDirectory);
        return identity;
    }

    /// <summary>Asks the member at <c>--join</c> to add this node; the leader answers with the node's tokens.</summary>
    private static async Task<NodeIdentity> JoinAsync(ClusterOptions options, ServerManager manager, CancellationToken cancellationToken)
    {
        string member = options.Join!;
        var request = new JoinRequest { Id = options.NodeId, Http = options.Http, H2 = options.H2, Raft = options.RaftEndPoint.ToString() };
        using var peers = new PeerHttp(options.Secret, options.NodeId);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.StartTimeout);
        HttpResponseMessage response;
        while (true)
        {
            try
            {
                response = await peers.SendAsync(HttpMethod.Post, member, "/v1/cluster/nodes",
                    PeerHttp.Json(JsonSerializer.SerializeToUtf8Bytes(request, ProtocolJson.Default.JoinRequest)), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                throw new ClusterStartException($"--join {member}: no ParamDb node answers there ({e.Message}). Give the HTTP address (host:port) of a running member.", e);
            }
            // 503: the cluster is between leaders (an election takes a few hundred ms): ask again until the start timeout.
            if (response.StatusCode != HttpStatusCode.ServiceUnavailable || timeout.IsCancellationRequested) break;
            response.Dispose();
            try
            {
                await Task.Delay(200, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ClusterStartException($"--join {member}: the cluster had no leader to admit this node for {options.StartTimeout.TotalSeconds:F0} s. Check that a majority of its members runs.");
            }
        }
        using (response)
        {
            byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new ClusterStartException($"--join {member}: the member refused ({(int)response.StatusCode}): {ProblemText(body)}");
            JoinReply reply = JsonSerializer.Deserialize(body, ProtocolJson.Default.JoinReply)
                ?? throw new ClusterStartException($"--join {member}: the member's answer is empty.");
            ulong[] tokens = Array.ConvertAll(reply.Tokens, t => ulong.Parse(t, NumberStyles.None, CultureInfo.InvariantCulture));
            var identity = new NodeIdentity(reply.ClusterId, options.NodeId, reply.Replicas, reply.VirtualNodes, tokens);
            identity.Save(options.DataDirectory);
            return identity;
        }
    }

    /// <summary>The detail of a problem reply, or its raw text.</summary>
    internal static string ProblemText(byte[] body)
    {
        try
        {
            if (JsonSerializer.Deserialize(body, ProtocolJson.Default.ProblemReply) is { Detail: { } detail } problem)
                return problem.Code is { } code ? $"{code}: {detail}" : detail;
        }
        catch (JsonException)
        {
        }
        return System.Text.Encoding.UTF8.GetString(body);
    }

    /// <summary>
    /// Waits until the manager's state names this node (a founder commits the cluster's first command here), and
    /// checks that the state is of the cluster the data folder belongs to.
    /// </summary>
    private async Task SettleAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.StartTimeout);
        try
        {
            while (true)
            {
                ClusterState state = _manager.State;
                if (state.IsInitialized && state.ClusterId != _identity.ClusterId)
                    throw new ClusterStartException($"{_options.DataDirectory} belongs to cluster {_identity.ClusterId}, but the members at its Raft addresses hold cluster {state.ClusterId}. Give this node its own data folder.");
                if (state.Nodes.ContainsKey(_identity.NodeId))
                {
                    OnStateChanged(state);
                    return;
                }
                if (!state.IsInitialized && _manager.IsLeader)   // only a founder leads a group that was never initialized
                    await ProposeInitAsync(timeout.Token).ConfigureAwait(false);
                else
                    await Task.Delay(20, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ClusterStartException($"Node '{_identity.NodeId}' did not appear in the cluster's state within {_options.StartTimeout.TotalSeconds:F0} s: no leader could be reached through --raft {_options.RaftEndPoint}. Start the other members, or check the addresses.");
        }
    }

    private async Task ProposeInitAsync(CancellationToken cancellationToken)
    {
        var self = new NodeInfo(_identity.NodeId, _options.Http, _options.H2, _options.RaftEndPoint.ToString(), NodeState.Up, _identity.Tokens);
        try
        {
            await _manager.ProposeAsync(new InitCluster(_identity.ClusterId, _identity.Replicas, _identity.VirtualNodes, self), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException or CommitUnknownException)
        {
            // Leadership moved while the init was committed, or before: the settle loop reads the state and tries again.
        }
    }

    private void OnStateChanged(ClusterState state)
    {
        ClusterRing? ring = RingOf(state);
        lock (_ringLock)
        {
            if (ring is null || Volatile.Read(ref _ring) is { } current && current.Epoch == ring.Epoch) return;
            Volatile.Write(ref _ring, ring);
        }
        _logger.RingEpochChanged(ring.Epoch, ring.NodeCount);
        RingChanged?.Invoke(ring);
    }

    /// <summary>The ring of a state's nodes with their tokens; null before any node is known.</summary>
    public static ClusterRing? RingOf(ClusterState state) => state.BuildRing();

    /// <summary>Leaves the Raft group's traffic (the membership stays: a restart rejoins).</summary>
    public async ValueTask DisposeAsync()
    {
        _manager.StateChanged -= OnStateChanged;
        if (_lease is not null) await _lease.DisposeAsync().ConfigureAwait(false);
        if (_detector is not null) await _detector.DisposeAsync().ConfigureAwait(false);
        await _manager.DisposeAsync().ConfigureAwait(false);
        _peers.Dispose();
    }
}
