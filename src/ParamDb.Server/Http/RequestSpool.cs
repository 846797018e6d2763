using Microsoft.AspNetCore.Http.Features;
using ParamDb.Protocol;

namespace ParamDb.Server.Http;

/// <summary>
/// Copies a request body that may be many GB (an import) to a file, in constant memory: each segment Kestrel
/// holds goes straight to the file's buffer. The route's own limit replaces the server-wide
/// <c>--max-body-size</c>, for this request only.
/// </summary>
public static class RequestSpool
{
    /// <summary>Copies the body to <paramref name="destination"/> and flushes it; on failure the error says why.</summary>
    /// <param name="request">The request; its body is sent as is (no Content-Encoding).</param>
    /// <param name="destination">The file the body goes to.</param>
    /// <param name="maxBytes">The largest body accepted (<c>--max-import</c>).</param>
    /// <param name="ct">The request's abort token.</param>
    /// <returns>The body's length, or the problem: 413 <c>body_too_large</c>, 415 for a Content-Encoding.</returns>
    public static async ValueTask<(long Length, ProtocolError Error)> CopyToAsync(HttpRequest request, Stream destination, long maxBytes, CancellationToken ct)
    {
        var encoding = request.Headers.ContentEncoding.ToString();
        if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
            return (0, new ProtocolError(415, ProblemCodes.UnsupportedMediaType, $"Content-Encoding '{encoding}' is not supported for an import; send the file as it is."));
        if (request.ContentLength > maxBytes)
            return (0, TooLarge($"The file is {request.ContentLength} bytes; this server imports at most {maxBytes} (--max-import)."));
        // Kestrel's limit (--max-body-size) would cut an import off at 256 MiB: this route has its own.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = maxBytes;

        var reader = request.BodyReader;
        long length = 0;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(ct);
                var data = result.Buffer;
                length += data.Length;
                if (length > maxBytes)
                {
                    reader.AdvanceTo(data.End);
                    return (0, TooLarge($"The file exceeds {maxBytes} bytes (--max-import)."));
                }
                foreach (var segment in data) await destination.WriteAsync(segment, ct);
                reader.AdvanceTo(data.End);
                if (result.IsCompleted) break;
            }
        }
        catch (BadHttpRequestException e)
        {
            return (0, e.StatusCode == 413
                ? TooLarge($"The file exceeds {maxBytes} bytes (--max-import).")
                : new ProtocolError(e.StatusCode, ProblemCodes.BadRequest, e.Message));
        }
        await destination.FlushAsync(ct);
        return (length, default);
    }

    private static ProtocolError TooLarge(string detail) => new(413, ProblemCodes.BodyTooLarge, detail);
}
