using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Directories;
using ParamDb.Cluster.Metadata;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;

namespace ParamDb.Cluster.Membership;

/// <summary>Joins, as the leader admits them, and metadata requests a follower hands to the leader.</summary>
public sealed partial class ClusterMember
{
    /// <summary>Serializes admissions: two joins at once must not be given tokens from the same ring.</summary>
    private readonly SemaphoreSlim _admitting = new(1, 1);

    /// <summary>
    /// The leader's half of a join: checks the request, chooses the node's tokens (<see cref="TokenAllocator"/>),
    /// adds it to the Raft group and commits it to the ring. A request the leader already admitted (a joiner that
    /// died before it saved its identity) gets the same answer again.
    /// </summary>
    /// <returns>The reply, or why the node cannot join.</returns>
    /// <exception cref="NotLeaderException">This member does not lead: forward with <see cref="ForwardToLeaderAsync"/>.</exception>
    /// <exception cref="NoLeaderException">The cluster has no leader.</exception>
    public async Task<(JoinReply? Reply, ProtocolError Error)> AdmitAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        var node = new NodeInfo(request.Id, request.Http, request.H2, request.Raft, NodeState.Up);
        if (node.Problem() is { } problem) return (null, new ProtocolError(400, ProblemCodes.BadRequest, problem));
        if (!IPEndPoint.TryParse(request.Raft, out IPEndPoint? raft))
            return (null, new ProtocolError(400, ProblemCodes.BadRequest, $"raft must be an IP address and port; got '{request.Raft}'."));
        if (!_manager.IsLeader) throw new NotLeaderException(_manager.LeaderId, _manager.LeaderHttp);

        await _admitting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _manager.ReadBarrierAsync(cancellationToken).ConfigureAwait(false);
            ClusterState state = _manager.State;
            if (state.Nodes.TryGetValue(request.Id, out NodeInfo? known))
            {
                if (known.Raft == request.Raft && known.Http == request.Http) return (Reply(state, known), default);
                return (null, new ProtocolError(409, ProblemCodes.NodeIdTaken,
                    $"Node id '{request.Id}' is taken by the member at {known.Http} (raft {known.Raft}). Give the new node another --node-id."));
            }
            if (state.FindByRaftAddress(request.Raft) is { } other)
                return (null, new ProtocolError(409, ProblemCodes.NodeIdTaken, $"Raft address {request.Raft} is member '{other.Id}''s. Give the new node its own --raft address."));
            if (!state.Tables.IsEmpty)
                return (null, new ProtocolError(409, ProblemCodes.ClusterNotEmpty,
                    $"The cluster holds {state.Tables.Count} tables. A joining node takes ranges whose rows would have to move to it, and moving rows comes with replication (not built yet): let every node join before creating tables."));

            ClusterRing ring = RingOf(state) ?? throw new NoLeaderException();
            ulong[] tokens = TokenAllocator.ForJoiner(ring, state.VirtualNodes).Tokens.ToArray();
            if (!await _manager.AddMemberAsync(request.Id, raft, cancellationToken).ConfigureAwait(false)
                && _manager.State.FindByRaftAddress(request.Raft) is null)
            {
                // False means "already a voter" or "could not catch up"; a voter not in the ring is a join that died half-way.
                _logger.MembershipChanged(request.Id, request.Raft, "add (already a voter, or it did not catch up)", false);
            }
            CommandResult result = await _manager.ProposeAsync(new AddNode(node with { Tokens = tokens }), cancellationToken).ConfigureAwait(false);
            if (!result.Succeeded) return (null, new ProtocolError(409, ProblemCodes.NodeIdTaken, result.Detail ?? $"The leader could not add node '{request.Id}' ({result.Outcome})."));
            state = _manager.State;
            _logger.NodeAdmitted(request.Id, request.Http, request.Raft, tokens.Length, state.RingEpoch);
            return (Reply(state, state.Nodes[request.Id]), default);
        }
        finally
        {
            _admitting.Release();
        }
    }

    private static JoinReply Reply(ClusterState state, NodeInfo node) => new()
    {
        ClusterId = state.ClusterId,
        Replicas = state.Replicas,
        VirtualNodes = state.VirtualNodes,
        Epoch = state.RingEpoch,
        Tokens = Array.ConvertAll(node.Tokens, t => t.ToString(CultureInfo.InvariantCulture)),
    };

    /// <summary>
    /// For a request naming a table this node does not know: catches up with the server manager first, since a
    /// table created a moment ago through another node may not have reached this one. When no leader answers, this
    /// node cannot tell "does not exist" from "not here yet", so it must not say 404: the request is refused with
    /// 503 <c>no_leader</c> (nothing changed; clients retry after <c>Retry-After</c>). A client that created a
    /// table through n1 and pushed straight to n2 while n2 sat out an election was told the table did not exist.
    /// </summary>
    /// <exception cref="MetadataUnavailableException">No leader answered within 2 s.</exception>
    public async Task CatchUpForUnknownTableAsync(string table, CancellationToken cancellationToken)
    {
        if (await TryCatchUpAsync(cancellationToken).ConfigureAwait(false)) return;
        throw new MetadataUnavailableException(new ProtocolError(503, ProblemCodes.NoLeader,
            $"This node does not know a table named '{table}', and no leader of the server manager answered to confirm that none exists "
            + "(an election is under way, or a majority of the members is unreachable); one created a moment ago through another node "
            + "may not have reached this node yet. Nothing changed; retry shortly."), ClusterTableDirectory.RetryAfter);
    }

    /// <summary>
    /// Catches this node up with the server manager (a read barrier), waiting at most 2 s: what a node does before
    /// it says a table or worker does not exist, since one created a moment ago through another node may not have
    /// reached it yet. False when there was no leader to catch up with.
    /// </summary>
    public async Task<bool> TryCatchUpAsync(CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await _manager.ReadBarrierAsync(bounded.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The other nodes of the current ring, with their HTTP addresses.</summary>
    public IReadOnlyList<(string Id, string Http)> Others()
    {
        var others = new List<(string, string)>();
        if (Ring is not { } ring) return others;
        var nodes = _manager.State.Nodes;
        foreach (string id in ring.Nodes)
            if (id != _identity.NodeId && nodes.TryGetValue(id, out NodeInfo? info)) others.Add((id, info.Http));
        return others;
    }

    /// <summary>
    /// Sends a request this follower cannot serve to the leader's REST API, as a peer, and returns the leader's
    /// answer for the caller to relay. Waits first for a leader to be known, up to 5 s.
    /// </summary>
    /// <exception cref="NoLeaderException">No leader is known, or it cannot be reached: nothing was sent.</exception>
    /// <exception cref="CommitUnknownException">The request went out and no answer came back.</exception>
    public async Task<HttpResponseMessage> ForwardToLeaderAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        string? leader = _manager.LeaderHttp;
        if (leader is null && await _manager.WaitForLeaderAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false)) leader = _manager.LeaderHttp;
        if (leader is null || _manager.IsLeader) throw new NoLeaderException();
        try
        {
            return await _peers.SendAsync(method, leader, path, content, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            // Never connected: nothing was sent, nothing changed.
            throw new NoLeaderException(e);
        }
        catch (HttpRequestException e)
        {
            throw new CommitUnknownException(e);
        }
    }
}
