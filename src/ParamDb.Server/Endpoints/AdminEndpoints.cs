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
        group.MapGet("/health", Health).WithName("Health").WithSummary("Liveness, version and the node's two addresses.");
        group.MapPost("/checkpoint", CheckpointAsync).WithName("Checkpoint").WithSummary("Take a checkpoint now; replies when it is durable.");
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
        });
    }

    private static async Task<Results<Ok<CheckpointReply>, ProblemHttpResult>> CheckpointAsync(StoreHost host, CancellationToken ct)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        var result = await node.Storage.CheckpointAsync(ct);
        return TypedResults.Ok(new CheckpointReply { Token = result.Token.ToString(), DurationMs = result.Duration.TotalMilliseconds, CompletedAt = result.CompletedAt });
    }
}
