using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Membership;
using ParamDb.Cluster.Metadata;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Liveness;

/// <summary>
/// The leader's half of liveness (docs/replication.md, "Failure detection"): it grants heartbeats while it holds
/// Raft's leader lease, remembers when it last heard each node, and commits <see cref="NodeState.Down"/> for a node
/// it has not heard for <see cref="ClusterOptions.DownAfter"/>, and <see cref="NodeState.Up"/> again when a down node
/// is heard. Heartbeats are not Raft writes: only the changes of state are. A new leader counts every node as
/// heard when it was elected, so it never declares a node down before a lease (and a heartbeat interval) has passed
/// since, which outlasts any lease the old leader granted. A silent node whose port refuses connections is declared
/// down as soon as its lease has lapsed (about half of <see cref="ClusterOptions.DownAfter"/>); one that does not
/// answer at all, after the whole of it.
/// </summary>
public sealed class FailureDetector : IAsyncDisposable
{
    private readonly ClusterMember _member;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, long> _heard = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (ulong Epoch, IReadOnlyCollection<string> CaughtUp)> _caughtUp = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _leaderSince;   // Stopwatch timestamp; 0 while not leading
    // When this leader first saw each node in the state (a node that joined while it leads), and the nodes that were
    // there when it took over; only the loop touches them.
    private readonly Dictionary<string, long> _firstSeen = new(StringComparer.Ordinal);
    private readonly HashSet<string> _atTakeover = new(StringComparer.Ordinal);

    internal FailureDetector(ClusterMember member, ILogger logger)
    {
        _member = member;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>
    /// A heartbeat from <paramref name="nodeId"/>: granted when this node leads, holds its leader lease and does not
    /// count the sender down, with the ring epoch it was granted at (the sender's lease counts only once its own
    /// ring is that new, so it never acts on a ring from before it was declared down). Refused (false) otherwise,
    /// and then the sender's lease is not renewed. Recorded either way: a down node that is heard again comes back.
    /// </summary>
    /// <param name="nodeId">The sender.</param>
    /// <param name="epoch">The ring epoch the grant is made at; 0 when this node does not lead.</param>
    /// <param name="report">The joining nodes the sender has caught up on every arc it serves for them, and the
    /// epoch it says that at (<see cref="Replication.Replicator.CaughtUpBackups"/>).</param>
    public bool Grant(string nodeId, out ulong epoch, (ulong Epoch, IReadOnlyCollection<string> CaughtUp) report = default)
    {
        epoch = 0;
        if (!_member.Manager.HoldsLeaderLease) return false;
        _heard[nodeId] = Stopwatch.GetTimestamp();
        if (report.CaughtUp is not null) _caughtUp[nodeId] = (report.Epoch, report.CaughtUp);
        ClusterState state = _member.Manager.State;
        epoch = state.RingEpoch;
        return state.Nodes.TryGetValue(nodeId, out NodeInfo? node) && node.State != NodeState.Down;
    }

    private async Task RunAsync()
    {
        ClusterOptions options = _member.Options;
        // A quarter of a heartbeat interval (31 ms at the default --down-after): a dead node is declared within that
        // of its lease lapsing, not a whole interval later. A pass over the node table costs microseconds.
        using var timer = new PeriodicTimer(options.HeartbeatInterval / 4);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                long ledSince = _member.Manager.LedSince;
                if (ledSince == 0)
                {
                    _leaderSince = 0;
                    continue;
                }
                long now = Stopwatch.GetTimestamp();
                if (_leaderSince != ledSince)
                {
                    // Counted from the election, not from this loop's first look: every lease the old leader granted
                    // was granted before it (ServerManager.LedSince), so it has lapsed a lease later.
                    _leaderSince = ledSince;
                    _firstSeen.Clear();
                    _atTakeover.Clear();
                    _atTakeover.UnionWith(_member.Manager.State.Nodes.Keys);
                    _logger.TookOver(_member.Identity.NodeId, Stopwatch.GetElapsedTime(ledSince, now).TotalMilliseconds);
                }
                await CheckAsync(now, options).ConfigureAwait(false);
                try
                {
                    await MarkStandInsAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is NoLeaderException or NotLeaderException or CommitUnknownException)
                {
                    // leadership moved: the next leader counts them
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task CheckAsync(long now, ClusterOptions options)
    {
        ClusterState state = _member.Manager.State;
        string self = _member.Identity.NodeId;
        foreach (NodeInfo node in state.Nodes.Values)
        {
            if (node.Id == self) continue;   // a leader that runs this loop is alive
            if (!_firstSeen.TryGetValue(node.Id, out long firstSeen)) _firstSeen[node.Id] = firstSeen = now;
            bool heardOnce = _heard.TryGetValue(node.Id, out long lastHeard) && lastHeard >= _leaderSince;
            // Silence counts from the last heartbeat, or from when this leader took over or first saw the node (a
            // node that just joined has a whole --down-after to send its first).
            long heard = Math.Max(lastHeard, Math.Max(_leaderSince, firstSeen));
            TimeSpan silent = Stopwatch.GetElapsedTime(heard, now);
            // When its lease has surely lapsed. One this leader granted runs out a lease after the heartbeat it was
            // granted for, which this leader heard (plus a quarter interval for this loop's tick). One the previous
            // leader granted runs out a lease after this leader's election (ServerManager.LedSince), plus a whole
            // heartbeat interval for how late the previous leader's Raft lease timer may have fired on a loaded host.
            long lapsedAt = Math.Max(lastHeard + Ticks(options.LeaseDuration + options.HeartbeatInterval / 4),
                _leaderSince + Ticks(options.LeaseDuration + options.HeartbeatInterval));
            // A node whose lease has lapsed and whose port refuses connections has no process behind it: down now,
            // not after the whole --down-after. A host that does not answer at all (power, partition) gives no such
            // proof and waits the timeout; so does a node that joined under this leader and has not sent a heartbeat
            // yet (it may not listen yet).
            bool gone = node.State is NodeState.Up or NodeState.Joining && silent <= options.DownAfter
                && (heardOnce || _atTakeover.Contains(node.Id))
                && now > lapsedAt && await RefusesAsync(node.Http).ConfigureAwait(false);
            NodeState? next = node.State switch
            {
                NodeState.Up or NodeState.Joining when silent > options.DownAfter || gone => NodeState.Down,
                // Back: with copies elsewhere it may be stale, so it first catches up as a backup (joining).
                NodeState.Down when _heard.TryGetValue(node.Id, out long last) && last > _leaderSince && Stopwatch.GetElapsedTime(last, now) < options.LeaseDuration
                    => state.Replicas > 1 && state.Nodes.Count > 1 ? NodeState.Joining : NodeState.Up,
                NodeState.Joining when CaughtUp(node.Id) => NodeState.Up,
                _ => null,
            };
            if (next is not { } change) continue;
            try
            {
                CommandResult result = await _member.Manager.ProposeAsync(new SetNodeState(node.Id, change), _stop.Token).ConfigureAwait(false);
                if (result.Outcome == CommandOutcome.Applied) _logger.NodeStateDeclared(node.Id, change, silent.TotalMilliseconds);
            }
            catch (Exception e) when (e is NoLeaderException or NotLeaderException or CommitUnknownException)
            {
                return;   // leadership moved: the next leader decides
            }
        }
    }

    /// <summary>
    /// True when a TCP connection to <paramref name="http"/> (<c>host:port</c>) is refused: the host is up and nothing
    /// listens there. A timeout or any other error proves nothing and answers false.
    /// </summary>
    private async Task<bool> RefusesAsync(string http)
    {
        int colon = http.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(http.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port))
            return false;
        string host = http[..colon].Trim('[', ']');
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        deadline.CancelAfter(ProbeTimeout);
        try
        {
            await socket.ConnectAsync(host, port, deadline.Token).ConfigureAwait(false);
            return false;
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused)
        {
            return true;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>How long a probe of a silent node's port may take: a refusal on a reachable host comes back in well under a millisecond.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Whether every node that serves an arc the joining node backs up has reported it caught up, in the current
    /// epoch: then it holds everything they acknowledged, and may serve its own arcs again. An arc that no node
    /// serves (its whole chain down or joining) needs no catch-up if the joining node is the one of its chain that
    /// left up last: it holds every acknowledged push there, and serves the arc once up. Any other node of such a
    /// chain waits for that one (docs/replication.md, "Two failures in one chain").
    /// </summary>
    private bool CaughtUp(string joining)
    {
        if (_member.Ring is not { } ring || ring.NodeIndex(joining) is var b && b < 0) return false;
        ClusterState state = _member.Manager.State;
        var primaries = new HashSet<int>();
        bool holdsAny = false;
        for (int i = 0; i < ring.Tokens.Length; i++)
        {
            ReadOnlySpan<int> set = ring.ReplicasAt(i);
            if (!set.Contains(b)) continue;
            holdsAny = true;
            if (set[0] != b && ring.StateOf(set[0]) == NodeState.Up)
            {
                primaries.Add(set[0]);
                continue;
            }
            if (!LeftUpLast(ring, state, i, b)) return false;
        }
        if (!holdsAny) return false;
        foreach (int p in primaries)
        {
            if (!_caughtUp.TryGetValue(ring.Nodes[p], out var report) || report.Epoch != ring.Epoch || !report.CaughtUp.Contains(joining)) return false;
        }
        return true;
    }

    /// <summary>
    /// Whether <paramref name="node"/> left up last of the nodes that held arc <paramref name="arc"/> whole, none of
    /// which is up: of its set's nodes and its caught-up stand-ins, it has the latest <see cref="NodeInfo.LeftUpAt"/>,
    /// and that is not 0 (a node never declared down from up, a joining one that never caught up, proves nothing).
    /// </summary>
    private static bool LeftUpLast(ClusterRing ring, ClusterState state, int arc, int node)
    {
        ulong mine = state.Nodes.TryGetValue(ring.Nodes[node], out NodeInfo? self) ? self.LeftUpAt : 0;
        if (mine == 0) return false;
        foreach (int other in ring.ReplicasAt(arc))
        {
            // A stand-in in the set is up and not counted caught up (else it would serve): it never held the arc whole.
            if (other != node && !ring.IsStandIn(arc, other) && LeftLater(ring.Nodes[other])) return false;
        }
        foreach (StandIn standIn in state.StandIns)
        {
            if (standIn.Token == ring.Tokens[arc] && standIn.Node != ring.Nodes[node] && LeftLater(standIn.Node)) return false;
        }
        return true;

        bool LeftLater(string id) => state.Nodes.TryGetValue(id, out NodeInfo? info) && info.LeftUpAt >= mine;
    }

    /// <summary>
    /// Counts caught up the stand-ins whose arcs' primaries report them so at the current epoch
    /// (<see cref="MarkStandIns"/>): from then on they hold every acknowledged push there, and may serve an arc whose
    /// chain fails.
    /// </summary>
    private async Task MarkStandInsAsync()
    {
        if (_member.Ring is not { } ring || ring.Epoch != _member.Manager.State.RingEpoch) return;
        Dictionary<int, List<ulong>>? ready = null;
        for (int i = 0; i < ring.Tokens.Length; i++)
        {
            ReadOnlySpan<int> set = ring.ReplicasAt(i);
            if (ring.CopiesAt(i) >= set.Length || ring.StateOf(set[0]) != NodeState.Up) continue;
            if (!_caughtUp.TryGetValue(ring.Nodes[set[0]], out var report) || report.Epoch != ring.Epoch) continue;
            for (int b = ring.CopiesAt(i); b < set.Length; b++)
            {
                if (!report.CaughtUp.Contains(ring.Nodes[set[b]])) continue;
                ready ??= [];
                if (!ready.TryGetValue(set[b], out List<ulong>? tokens)) ready[set[b]] = tokens = [];
                tokens.Add(ring.Tokens[i]);
            }
        }
        if (ready is null) return;
        foreach (var (node, tokens) in ready)
        {
            CommandResult result = await _member.Manager.ProposeAsync(new MarkStandIns(ring.Nodes[node], ring.Epoch, [.. tokens]), _stop.Token).ConfigureAwait(false);
            if (result.Outcome == CommandOutcome.Applied) _logger.StandInsCaughtUp(ring.Nodes[node], tokens.Count, result.RingEpoch);
            else return;   // the ring moved on: the next reports are of the new epoch
        }
    }

    /// <summary>Stops watching.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
