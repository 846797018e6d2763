using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;

namespace ParamDb.Server.Http;

/// <summary>
/// The <c>scope</c> query parameter of the routes that span a cluster (table stats, checkpoints, export, import):
/// absent, the whole cluster; <c>node</c>, the node asked alone. A single node is its own whole.
/// </summary>
public static class Scopes
{
    /// <summary>The value that asks for the node alone.</summary>
    public const string Node = "node";

    /// <summary>Whether <paramref name="scope"/> asks for this node alone.</summary>
    public static bool ThisNodeOnly(string? scope) => string.Equals(scope, Node, StringComparison.Ordinal);

    /// <summary>400 <c>bad_request</c> for any scope but none or <c>node</c>, else null.</summary>
    public static ProblemHttpResult? Reject(string? scope) =>
        scope is null || ThisNodeOnly(scope)
            ? null
            : Problems.Of(400, ProblemCodes.BadRequest, $"'{scope}' is not a scope: leave it out for the whole cluster, or give '{Node}' for the node asked alone.");
}
