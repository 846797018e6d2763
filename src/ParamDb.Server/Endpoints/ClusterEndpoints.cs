using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Cluster;
using ParamDb.Cluster.Membership;
using ParamDb.Cluster.Metadata;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;

namespace ParamDb.Server.Endpoints;

/// <summary>The cluster (docs/cluster.md): <c>GET /v1/cluster</c>, and <c>POST /v1/cluster/nodes</c> for a node that joins.</summary>
public static class ClusterEndpoints
{
    /// <summary>Largest join request: four short fields.</summary>
    private const int MaxJoinBytes = 4096;

    /// <summary>Maps the cluster routes.</summary>
    public static RouteGroupBuilder MapCluster(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/cluster").WithTags("Cluster");
        group.MapGet("/", Get).WithName("GetCluster")
            .WithSummary("The ring: its epoch, leader, R, V, and every node with its addresses, state and tokens (a single node answers with itself, epoch 0).");
        group.MapPost("/nodes", JoinAsync).WithName("JoinCluster")
            .WithSummary("A node asks to join (paramdb --join sends it); the leader gives it its tokens. Peers only.")
            .Accepts<JoinRequest>(MediaTypes.Json);
        group.MapPost("/heartbeats", Heartbeat).WithName("Heartbeat")
            .WithSummary("A node renews its lease with the leader (docs/replication.md). Peers only: the sender names itself in ParamDb-Peer.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return group;
    }

    private static Results<Ok<ClusterView>, ProblemHttpResult> Get(StoreHost host, NodeSettings settings, ListenEndpoints endpoints)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        if (node.Cluster is not { } member)
        {
            return TypedResults.Ok(new ClusterView
            {
                Epoch = 0,
                Leader = null,
                Replicas = 1,
                VirtualNodes = node.Ranges.Ranges.Count,
                Nodes =
                [
                    new Protocol.Cluster.ClusterNode
                    {
                        Id = settings.Cluster?.NodeId ?? "paramdb",
                        Http = Address(endpoints.Http1Url),
                        H2 = Address(endpoints.Http2Url),
                        State = NodeState.Up,
                        Tokens = Decimal(node.Ranges.Ranges.Tokens),
                    },
                ],
            });
        }
        return TypedResults.Ok(View(member));
    }

    /// <summary>The document of a cluster member's current state.</summary>
    public static ClusterView View(ClusterMember member)
    {
        ClusterState state = member.Manager.State;
        var nodes = new List<Protocol.Cluster.ClusterNode>(state.Nodes.Count);
        foreach (NodeInfo info in state.Nodes.Values)
            nodes.Add(new Protocol.Cluster.ClusterNode { Id = info.Id, Http = info.Http, H2 = info.H2, Raft = info.Raft, State = info.State, Tokens = Decimal(info.Tokens) });
        // Over the arcs of the ring: unavailable when no node that holds an arc whole is up to serve it,
        // under-replicated when fewer than R of them are up (a node down, or still catching up: joining, or a
        // stand-in still being sent the arc).
        int underReplicated = 0, unavailable = 0;
        if (ClusterMember.RingOf(state) is { } ring)
        {
            for (int i = 0; i < ring.Tokens.Length; i++)
            {
                ReadOnlySpan<int> set = ring.ReplicasAt(i);
                if (ring.StateOf(set[0]) != NodeState.Up) unavailable++;
                else
                {
                    int up = 0;
                    foreach (int n in set[..ring.CopiesAt(i)]) if (ring.StateOf(n) == NodeState.Up) up++;
                    if (up < ring.ReplicaCount) underReplicated++;
                }
            }
        }
        List<ClusterStandIn>? standIns = null;
        foreach (StandIn standIn in state.StandIns)
            (standIns ??= []).Add(new ClusterStandIn { Token = standIn.Token.ToString(System.Globalization.CultureInfo.InvariantCulture), Node = standIn.Node });
        return new ClusterView
        {
            Epoch = state.RingEpoch,
            Leader = member.Manager.LeaderId,
            Replicas = state.Replicas,
            VirtualNodes = state.VirtualNodes,
            UnderReplicated = underReplicated,
            Unavailable = unavailable,
            Nodes = nodes,
            StandIns = standIns,
        };
    }

    /// <summary>
    /// Granted (204, with the ring epoch it was granted at in <c>ParamDb-Ring-Epoch</c>) only by a leader that holds
    /// Raft's leader lease, to a node it does not count down; any other member answers 503 <c>no_leader</c>, and a
    /// down node 503 <c>unavailable</c> until the leader has counted it back, and a node that runs with another
    /// <c>--down-after</c> (the <c>downAfter</c> query, in ms) 409 <c>down_after_mismatch</c>.
    /// </summary>
    private static Results<NoContent, ProblemHttpResult> Heartbeat(HttpRequest request, StoreHost host)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        if (node.Cluster is not { } member)
            return Problems.Of(404, ProblemCodes.NotInCluster, "This node is not a member of a cluster; heartbeats go to a cluster's leader.");
        string? sender = request.Headers[PeerHttp.PeerHeader];
        if (!Peers.IsPeer(request) || sender is null || !NodeInfo.IsValidId(sender))
            return Problems.Of(400, ProblemCodes.BadRequest, "Heartbeats come from cluster peers, which name themselves in ParamDb-Peer.");
        if (request.Query.TryGetValue("downAfter", out var downAfter)
            && (!long.TryParse(downAfter, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long ms) || ms != (long)member.Options.DownAfter.TotalMilliseconds))
            return Problems.Of(409, ProblemCodes.DownAfterMismatch,
                $"Node '{sender}' runs with --down-after {downAfter} but this leader with {(long)member.Options.DownAfter.TotalMilliseconds}; leases are safe only when every node agrees, so none is granted. Start every node with the same --down-after.");
        (ulong, IReadOnlyCollection<string>) report = default;
        if (request.Query.TryGetValue("caughtUp", out var caughtUp) && ulong.TryParse(request.Query["epoch"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong reportEpoch))
            report = (reportEpoch, caughtUp.ToString().Split(',', StringSplitOptions.RemoveEmptyEntries));
        if (member.Detector.Grant(sender, out ulong epoch, report))
        {
            request.HttpContext.Response.Headers[ParamDbHeaders.RingEpoch] = epoch.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.NoContent();
        }
        request.HttpContext.Response.Headers.RetryAfter = "1";
        return epoch == 0
            ? Problems.Of(503, ProblemCodes.NoLeader, "This node does not lead the cluster with a current leader lease; send heartbeats to the leader.")
            : Problems.Of(503, ProblemCodes.Unavailable, $"Node '{sender}' is not a member that is up in ring epoch {epoch}; it is granted a lease once the leader has counted it back.");
    }

    private static async Task<Results<Ok<JoinReply>, ProblemHttpResult, ContentHttpResult>> JoinAsync(HttpRequest request, StoreHost host, CancellationToken ct)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        if (node.Cluster is not { } member)
            return Problems.Of(404, ProblemCodes.NotInCluster, "This node is not a member of a cluster: give --join the HTTP address of a node started with --cluster-init or --join.");
        var (body, readError) = await RequestBody.ReadAsync(request, MaxJoinBytes, ct);
        if (body is null) return Problems.From(readError);
        JoinRequest? join;
        using (body)
        {
            try
            {
                join = JsonSerializer.Deserialize(body.Span, ProtocolJson.Default.JoinRequest);
            }
            catch (JsonException e)
            {
                return Problems.Of(400, ProblemCodes.BadRequest, $"The join request does not parse: {e.Message}");
            }
        }
        if (join is null) return Problems.Of(400, ProblemCodes.BadRequest, "The join request is empty.");
        try
        {
            var (reply, error) = await member.AdmitAsync(join, ct);
            return reply is not null ? TypedResults.Ok(reply) : Problems.From(error);
        }
        catch (CommitUnknownException)
        {
            // Leadership went while this node admitted the joiner: a join is safe to send again.
            return NoLeader(request);
        }
        catch (NotLeaderException)
        {
            try
            {
                using HttpResponseMessage forwarded = await member.ForwardToLeaderAsync(HttpMethod.Post, "/v1/cluster/nodes",
                    PeerHttp.Json(JsonSerializer.SerializeToUtf8Bytes(join, ProtocolJson.Default.JoinRequest)), ct);
                string text = await forwarded.Content.ReadAsStringAsync(ct);
                return TypedResults.Content(text, forwarded.Content.Headers.ContentType?.ToString() ?? MediaTypes.Json, System.Text.Encoding.UTF8, (int)forwarded.StatusCode);
            }
            catch (Exception e) when (e is NoLeaderException or CommitUnknownException)
            {
                // A join is safe to send again whatever happened: the leader answers a known node with its place.
                return NoLeader(request);
            }
        }
        catch (NoLeaderException)
        {
            return NoLeader(request);
        }
    }

    private static ProblemHttpResult NoLeader(HttpRequest request)
    {
        request.HttpContext.Response.Headers.RetryAfter = "1";
        return Problems.Of(503, ProblemCodes.NoLeader, "The cluster has no leader to admit a node right now; retry shortly.");
    }

    private static string[] Decimal(ReadOnlySpan<ulong> tokens)
    {
        var strings = new string[tokens.Length];
        for (int i = 0; i < tokens.Length; i++) strings[i] = tokens[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return strings;
    }

    private static string? Address(string? url) => url is null ? null : new Uri(url).Authority;
}
