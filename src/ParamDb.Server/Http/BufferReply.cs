using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ParamDb.Protocol;

namespace ParamDb.Server.Http;

/// <summary>
/// A reply whose body is already built in a pooled buffer (a KV block or JSON). Written with a
/// Content-Length, or LZ4-framed at the fastest level when the client accepts it; the buffer goes back
/// to the pool afterwards. HC levels are never used: they cost ~20× the time for little gain on floats.
/// </summary>
public sealed class BufferReply(PooledBuffer body, string contentType, bool lz4, string? clockMin = null) : IResult
{
    /// <inheritdoc />
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        using var owned = body;
        var response = httpContext.Response;
        response.StatusCode = 200;
        response.ContentType = contentType;
        response.Headers.Vary = "Accept, Accept-Encoding";
        if (clockMin is not null) response.Headers[ParamDbHeaders.ClockMin] = clockMin;
        if (!lz4)
        {
            response.ContentLength = body.Length;
            await response.Body.WriteAsync(body.Memory, httpContext.RequestAborted);
            return;
        }
        response.Headers.ContentEncoding = MediaTypes.Lz4Encoding;
        var encoder = LZ4Stream.Encode(response.Body, new LZ4EncoderSettings { CompressionLevel = LZ4Level.L00_FAST }, leaveOpen: true);
        await using (encoder)
        {
            await encoder.WriteAsync(body.Memory, httpContext.RequestAborted);
        }
    }
}
