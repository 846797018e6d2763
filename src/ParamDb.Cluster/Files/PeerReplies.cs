using System.Text.Json;
using ParamDb.Protocol;

namespace ParamDb.Cluster.Files;

/// <summary>What a peer's failed reply to a table move (an export read, an import slice) means for the client's request.</summary>
internal static class PeerReplies
{
    /// <summary>
    /// The peer's problem, named as that node's: its own status and code when it refused the request (4xx),
    /// else 503 <c>unavailable</c>, since the table could not be moved whole.
    /// </summary>
    public static async Task<ProtocolError> ProblemAsync(HttpResponseMessage reply, string node, CancellationToken cancellationToken)
    {
        int status = (int)reply.StatusCode;
        string code = ProblemCodes.Unavailable, detail = reply.ReasonPhrase ?? "no detail";
        try
        {
            using JsonDocument problem = JsonDocument.Parse(await reply.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
            if (problem.RootElement.TryGetProperty("code", out JsonElement c) && c.GetString() is { } given) code = given;
            if (problem.RootElement.TryGetProperty("detail", out JsonElement d) && d.GetString() is { } said) detail = said;
        }
        catch (JsonException)
        {
            // Not a problem body (a proxy's page, a cut reply): the status says enough.
        }
        return status is >= 400 and < 500
            ? new ProtocolError(status, code, $"Node '{node}' answered {status} {code}: {detail}")
            : new ProtocolError(503, ProblemCodes.Unavailable, $"Node '{node}' answered {status} {code}: {detail}");
    }

    /// <summary>503 <c>unavailable</c> for a node that could not be reached.</summary>
    public static ProtocolError Unreachable(string node, string address, Exception e) =>
        new(503, ProblemCodes.Unavailable, $"Node '{node}' at {address} could not be reached ({e.Message}).");
}
