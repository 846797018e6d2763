using ParamDb.Protocol;
using ParamDb.Server.Hosting;

namespace ParamDb.Server.Http;

/// <summary>
/// Routes not built for clusters yet: on a cluster member they answer 501 <c>not_supported_in_cluster</c> and change
/// nothing (a node's snapshot would hold only its own ranges, and look whole). Today: snapshots and restore.
/// </summary>
public static class SingleNodeOnly
{
    /// <summary>Makes the group's routes answer 501 on a cluster member, saying what is missing.</summary>
    public static RouteGroupBuilder SingleNodeOnlyUntil(this RouteGroupBuilder group, string what) =>
        group.AddEndpointFilter(async (context, next) =>
        {
            if (context.HttpContext.RequestServices.GetRequiredService<StoreHost>().Node?.Cluster is null) return await next(context);
            return Problems.Of(501, ProblemCodes.NotSupportedInCluster,
                $"{what} on a cluster is not built yet: this node holds only its own ranges, so the result would look whole and be partial. Until then, use a single node for it (docs/cluster.md, 'Not there yet').");
        });
}
