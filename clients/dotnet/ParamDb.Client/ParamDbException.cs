using ParamDb.Protocol;

namespace ParamDb.Client;

/// <summary>
/// The server refused a request: the HTTP <see cref="Status"/>, the stable <see cref="Code"/> from
/// <see cref="ProblemCodes"/> to switch on, and the server's <see cref="Detail"/>.
/// </summary>
public sealed class ParamDbException : Exception
{
    /// <summary>Creates the exception for one problem reply.</summary>
    /// <param name="status">HTTP status of the reply.</param>
    /// <param name="code">Stable problem code, e.g. <c>table_not_found</c>; <c>http_{status}</c> when the reply had none.</param>
    /// <param name="detail">What went wrong, for a person.</param>
    public ParamDbException(int status, string code, string? detail)
        : this(status, code, detail, problem: null)
    {
    }

    /// <summary>Creates the exception for one problem reply, keeping the whole problem.</summary>
    /// <param name="status">HTTP status of the reply.</param>
    /// <param name="code">Stable problem code; <c>http_{status}</c> when the reply had none.</param>
    /// <param name="detail">What went wrong, for a person.</param>
    /// <param name="problem">The problem-details body as the server sent it, if it sent one.</param>
    public ParamDbException(int status, string code, string? detail, ProblemReply? problem)
        : base(detail is null ? $"{code} (HTTP {status})" : $"{code}: {detail} (HTTP {status})")
    {
        Status = status;
        Code = code;
        Detail = detail;
        Problem = problem;
    }

    /// <summary>Builds the exception from a problem-details body, falling back to <c>http_{status}</c> without a code.</summary>
    internal static ParamDbException From(int status, ProblemReply? problem, string? fallbackDetail = null) =>
        new(status, problem?.Code ?? $"http_{status}", problem?.Detail ?? problem?.Title ?? fallbackDetail, problem);

    /// <summary>HTTP status of the reply (400, 404, 409, 413…).</summary>
    public int Status { get; }

    /// <summary>
    /// Stable machine-readable code (<see cref="ProblemCodes"/>); <c>http_{status}</c> when the reply carried
    /// no problem JSON (a proxy's error page, say).
    /// </summary>
    public string Code { get; }

    /// <summary>The server's explanation, if any.</summary>
    public string? Detail { get; }

    /// <summary>
    /// The whole problem-details body, when there was one: for <c>clock_wait_timeout</c> its
    /// <see cref="ProblemReply.Behind"/> names the workers that had not reached <see cref="ProblemReply.Target"/>.
    /// </summary>
    public ProblemReply? Problem { get; }
}
