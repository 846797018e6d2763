using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using ParamDb.Storage;

namespace ParamDb.Server.Http;

/// <summary>Builds RFC 7807 replies that carry ParamDb's stable <c>code</c>.</summary>
public static class Problems
{
    /// <summary>A problem reply for <paramref name="error"/>.</summary>
    public static ProblemHttpResult From(ProtocolError error) => From(error, null, 0);

    /// <summary>A <c>clock_wait_timeout</c> (or other wait) problem that also names the workers behind and the target clock.</summary>
    /// <param name="error">The rejection.</param>
    /// <param name="behind">For a clock wait: the workers behind; null otherwise (no <c>behind</c>/<c>target</c> members).</param>
    /// <param name="target">For a clock wait: the clock they had to reach.</param>
    public static ProblemHttpResult From(ProtocolError error, IReadOnlyList<WorkerClock>? behind, ulong target)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = error.Code };
        if (behind is not null)
        {
            extensions["behind"] = behind;
            extensions["target"] = target;
        }
        return TypedResults.Problem(detail: error.Detail, statusCode: error.Status, title: TitleOf(error.Code), extensions: extensions);
    }

    /// <summary>A problem reply with the given status, code and detail.</summary>
    public static ProblemHttpResult Of(int status, string code, string detail) => From(new ProtocolError(status, code, detail));

    /// <summary>404 <c>table_not_found</c>.</summary>
    public static ProblemHttpResult TableNotFound(string name) => From(DataErrors.TableNotFound(name));

    /// <summary>400 <c>invalid_table_name</c>.</summary>
    public static ProblemHttpResult InvalidName(string name) => From(DataErrors.InvalidName(name));

    /// <summary>503 <c>unavailable</c>, for a request that arrives while the store is closed.</summary>
    public static ProblemHttpResult Unavailable() => From(DataErrors.Unavailable);

    /// <summary>The code for a status that reached the generic problem writer without one.</summary>
    public static string CodeForStatus(int status) => status switch
    {
        404 => ProblemCodes.NotFound,
        405 => ProblemCodes.MethodNotAllowed,
        413 => ProblemCodes.BodyTooLarge,
        415 => ProblemCodes.UnsupportedMediaType,
        503 => ProblemCodes.Unavailable,
        >= 500 => ProblemCodes.Internal,
        _ => ProblemCodes.BadRequest,
    };

    /// <summary>The problem's title: its code in words ("table_not_found" → "Table not found").</summary>
    internal static string TitleOf(string code) => code.Replace('_', ' ') switch
    {
        var t => char.ToUpperInvariant(t[0]) + t[1..],
    };
}
