using Microsoft.AspNetCore.Diagnostics;
using ParamDb.Storage;

namespace ParamDb.Server.Http;

/// <summary>
/// Answers a table or worker change that could not be made now (<see cref="MetadataUnavailableException"/>: in a
/// cluster, no leader) with its problem and a <c>Retry-After</c>, wherever in an endpoint it was thrown.
/// </summary>
public sealed class MetadataExceptionHandler : IExceptionHandler
{
    /// <inheritdoc />
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not MetadataUnavailableException unavailable) return false;
        if (unavailable.Error.Status == StatusCodes.Status503ServiceUnavailable)
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(unavailable.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await Problems.From(unavailable.Error).ExecuteAsync(httpContext);
        return true;
    }
}
