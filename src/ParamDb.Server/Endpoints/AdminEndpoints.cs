using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;

namespace ParamDb.Server.Endpoints;

/// <summary>Node-level routes: <c>GET /v1/health</c> and <c>POST /v1/checkpoint</c>.</summary>
public static class AdminEndpoints
{
    /// <summary>Server version reported by health.</summary>
    public static readonly string Version = typeof(AdminEndpoints).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Maps the node routes.</summary>
    public static RouteGroupBuilder MapAdmin(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Node");
        group.MapGet("/health", Health).WithName("Health").WithSummary("Liveness, version, the node's two addresses and, on a cluster member, the bytes it replicated.");
        group.MapPost("/checkpoint", CheckpointAsync).WithName("Checkpoint").WithSummary("Take a checkpoint now (on every node of a cluster); replies when it is durable.");
        return group;
    }

    private static Results<Ok<HealthReply>, ProblemHttpResult> Health(StoreHost host, ListenEndpoints endpoints)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        return TypedResults.Ok(new HealthReply
        {
            Status = "ok",
            Version = Version,
            Http1 = endpoints.Http1Url,
            Http2 = endpoints.Http2Url,
            Tables = node.Tables.List().Count,
            LastCheckpoint = node.Storage.LastCheckpoint,
            Replication = node.Replicator?.Counters,
        });
    }

    /// <param name="host">The node.</param>
    /// <param name="ct">The request's end.</param>
    /// <param name="scope"><c>node</c>: this node only; default: every node of a cluster, this one's token in the reply.</param>
    private static async Task<Results<Ok<CheckpointReply>, ProblemHttpResult>> CheckpointAsync(StoreHost host, CancellationToken ct, string? scope = null)
    {
        if (Scopes.Reject(scope) is { } badScope) return badScope;
        if (host.Node is not { } node) return Problems.Unavailable();
        Task<string?>[] others = node.Cluster is { } member && !Scopes.ThisNodeOnly(scope)
            ? [.. member.Others().Select(o => CheckpointPeerAsync(member, o.Id, o.Http, ct))]
            : [];
        var result = await node.Storage.CheckpointAsync(ct);
        foreach (string? failure in await Task.WhenAll(others))
            if (failure is not null) return Problems.Of(503, ProblemCodes.Unavailable, $"This node took checkpoint {result.Token}, but {failure}. Retry to checkpoint every node.");
        return TypedResults.Ok(new CheckpointReply { Token = result.Token.ToString(), DurationMs = result.Duration.TotalMilliseconds, CompletedAt = result.CompletedAt });
    }

    /// <summary>Asks one peer to checkpoint itself; null when it did, else what went wrong.</summary>
    private static async Task<string?> CheckpointPeerAsync(ParamDb.Cluster.Membership.ClusterMember member, string id, string http, CancellationToken ct)
    {
        try
        {
            using HttpResponseMessage reply = await member.Peers.SendAsync(HttpMethod.Post, http, "/v1/checkpoint?scope=node", null, ct);
            return reply.IsSuccessStatusCode ? null : $"node '{id}' answered {(int)reply.StatusCode}";
        }
        catch (HttpRequestException e)
        {
            return $"node '{id}' at {http} could not be reached ({e.Message})";
        }
    }
}
