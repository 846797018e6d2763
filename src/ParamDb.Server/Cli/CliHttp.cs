using System.Text.Json;
using ParamDb.Protocol;

namespace ParamDb.Server.Cli;

/// <summary>HTTP for the commands: a plain <see cref="HttpClient"/> per run, and problem replies printed for people.</summary>
public static class CliHttp
{
    /// <summary>
    /// A client for the node at <paramref name="url"/>, with no timeout: after a many-GB upload the node checks and
    /// applies the file before it answers, which can take minutes. Ctrl-C still cancels.
    /// </summary>
    public static HttpClient CreateClient(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        // Relative request paths ("v1/…") then append to a base path such as http://host/paramdb/.
        var baseAddress = url.AbsoluteUri.EndsWith('/') ? url : new Uri(url.AbsoluteUri + "/");
        return new HttpClient { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>
    /// Prints a failed reply on stderr, <c>paramdb import: 409 table_exists: Table 'emb' exists with …</c> (the
    /// problem's code and detail, or the status and the start of the body when it is not a problem), and returns
    /// exit code 1.
    /// </summary>
    public static async Task<int> FailAsync(CliCommand command, HttpResponseMessage reply, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(console);
        string body = await reply.Content.ReadAsStringAsync(cancellationToken);
        ProblemReply? problem = null;
        if (reply.Content.Headers.ContentType?.MediaType == MediaTypes.Problem)
        {
            try
            {
                problem = JsonSerializer.Deserialize(body, ProtocolJson.Default.ProblemReply);
            }
            catch (JsonException)
            {
                // Not the problem it claims to be: show the body as it is.
            }
        }
        string code = problem?.Code ?? reply.ReasonPhrase ?? "";
        string detail = problem?.Detail ?? (body.Length <= 500 ? body : body[..500] + "…");
        await console.Error.WriteLineAsync($"paramdb {command.Name}: {(int)reply.StatusCode} {code}: {detail}");
        return 1;
    }
}
