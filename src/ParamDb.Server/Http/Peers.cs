using System.Security.Cryptography;
using System.Text;
using ParamDb.Cluster.Membership;
using ParamDb.Server.Options;

namespace ParamDb.Server.Http;

/// <summary>
/// Requests one cluster node makes of another (docs/cluster.md): they carry <c>ParamDb-Peer</c> with the sender's id,
/// and, when the cluster has a secret, <c>ParamDb-Cluster-Secret</c>. A peer request is answered for this node alone
/// (its own rows of a table, a heartbeat renewed here and not passed on).
/// </summary>
public static class Peers
{
    /// <summary>Whether the request comes from a cluster peer (checked by <see cref="UsePeerCheck"/> when a secret is set).</summary>
    public static bool IsPeer(HttpRequest request) => request.Headers.ContainsKey(PeerHttp.PeerHeader);

    /// <summary>
    /// With a cluster secret set, refuses (403 <c>peer_refused</c>, logged) a request that claims to be a peer's, or
    /// asks to join, without the secret.
    /// </summary>
    public static IApplicationBuilder UsePeerCheck(this IApplicationBuilder app, NodeSettings settings)
    {
        if (settings.Cluster?.Secret is not { } secret) return app;
        byte[] expected = Encoding.UTF8.GetBytes(secret);
        ILogger logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("ParamDb.Peers");
        return app.Use(async (context, next) =>
        {
            HttpRequest request = context.Request;
            bool joining = request.Path.StartsWithSegments("/v1/cluster/nodes") && HttpMethods.IsPost(request.Method);
            if ((IsPeer(request) || joining) && !Proves(request, expected))
            {
                logger.PeerRefused(context.Connection.RemoteIpAddress?.ToString() ?? "?", request.Method, request.Path);
                await Problems.Of(403, ParamDb.Protocol.ProblemCodes.PeerRefused,
                    "This request is for cluster peers and does not carry the cluster's secret (ParamDb-Cluster-Secret): start the node with the same --cluster-secret as the others.").ExecuteAsync(context);
                return;
            }
            await next(context);
        });
    }

    private static bool Proves(HttpRequest request, byte[] expected)
    {
        string? given = request.Headers[PeerHttp.SecretHeader];
        return given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), expected);
    }
}
