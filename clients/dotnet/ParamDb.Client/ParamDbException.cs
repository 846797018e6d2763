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
        : base(detail is null ? $"{code} (HTTP {status})" : $"{code}: {detail} (HTTP {status})")
    {
        Status = status;
        Code = code;
        Detail = detail;
    }

    /// <summary>HTTP status of the reply (400, 404, 409, 413…).</summary>
    public int Status { get; }

    /// <summary>
    /// Stable machine-readable code (<see cref="ProblemCodes"/>); <c>http_{status}</c> when the reply carried
    /// no problem JSON (a proxy's error page, say).
    /// </summary>
    public string Code { get; }

    /// <summary>The server's explanation, if any.</summary>
    public string? Detail { get; }
}
