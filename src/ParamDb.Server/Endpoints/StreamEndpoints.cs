using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using ParamDb.Protocol;
using ParamDb.Storage;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.Options;
using ParamDb.Server.Streaming;

namespace ParamDb.Server.Endpoints;

/// <summary><c>POST /v1/stream</c>: the HTTP/2 duplex stream of framed pushes, pulls and ticks (docs/streaming.md).</summary>
public static class StreamEndpoints
{
    /// <summary>Maps the stream route and publishes its <see cref="StreamMetrics"/>.</summary>
    public static RouteHandlerBuilder MapStream(this IEndpointRouteBuilder app)
    {
        var metrics = new StreamMetrics(app.ServiceProvider.GetRequiredService<IMeterFactory>());
        var logger = app.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(StreamSession).FullName!);
        return app.MapPost("/v1/stream", (HttpContext context, StoreHost host, NodeSettings settings, ListenEndpoints endpoints, IHostApplicationLifetime lifetime) =>
                HandleAsync(context, host, settings, endpoints, lifetime, metrics, logger))
            .WithTags("Stream")
            .WithName("Stream")
            .WithSummary("HTTP/2 duplex stream: many framed pushes, pulls and ticks in flight on one request; replies out of order, matched by request id.")
            .WithDescription("HTTP/2 only (the h2c port, 7421 by default); HTTP/1.x gets 505 http2_required. The request body is a sequence of request "
                + "frames, the response body a sequence of reply frames (layouts in docs/streaming.md). ParamDb-Timeout-Ms sets how long the "
                + "stream's consistent pulls may wait for clocks (default 30000). Per-frame errors come back as reply frames with the HTTP status "
                + "and a problem-details JSON payload; the HTTP status of the stream itself is 200 once it starts.")
            .Accepts<byte[]>(MediaTypes.Stream)
            .Produces<byte[]>(200, MediaTypes.Stream)
            .ProducesProblem(400)
            .ProducesProblem(505);
    }

    private static async Task<IResult> HandleAsync(HttpContext context, StoreHost host, NodeSettings settings, ListenEndpoints endpoints,
        IHostApplicationLifetime lifetime, StreamMetrics metrics, ILogger logger)
    {
        var request = context.Request;
        if (!HttpProtocol.IsHttp2(request.Protocol))
        {
            return Problems.Of(505, ProblemCodes.Http2Required,
                $"POST /v1/stream needs HTTP/2; this request came as {request.Protocol}. Connect to the node's h2c port "
                + $"({endpoints.Http2Url ?? "port 7421 by default"}) with HTTP/2 prior knowledge, e.g. HttpClient with "
                + "HttpVersion.Version20 and HttpVersionPolicy.RequestVersionExact, or httpx with http1=False, http2=True.");
        }
        if (!TryWaitTimeout(request, out var timeout, out var problem)) return problem;

        var features = context.Features;
        // The stream is one request that lives as long as the worker: the body limit (--max-body-size) applies
        // to each frame instead, and a worker that pauses between iterations must not be cut off for sending
        // (or reading) less than Kestrel's 240 bytes/s minimum (docs/design.md, facts measured).
        if (features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } maxBody) maxBody.MaxRequestBodySize = null;
        if (features.Get<IHttpMinRequestBodyDataRateFeature>() is { } minRequestRate) minRequestRate.MinDataRate = null;
        if (features.Get<IHttpMinResponseDataRateFeature>() is { } minResponseRate) minResponseRate.MinDataRate = null;

        using var session = new StreamSession(context, host, settings, metrics, logger, timeout, lifetime.ApplicationStopping, host.RestoreStarting);
        await session.RunAsync();
        return Results.Empty;
    }

    /// <summary><c>ParamDb-Timeout-Ms</c>: 0 … 3,600,000 ms, default 30 s, for every consistent pull of the stream.</summary>
    private static bool TryWaitTimeout(HttpRequest request, out TimeSpan timeout, out ProblemHttpResult problem)
    {
        timeout = DataErrors.DefaultWaitTimeout;
        problem = null!;
        var text = request.Headers[ParamDbHeaders.TimeoutMs].ToString();
        if (text.Length == 0) return true;
        long maxMs = (long)DataErrors.MaxWaitTimeout.TotalMilliseconds;
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long ms) || ms > maxMs)
        {
            problem = Problems.Of(400, ProblemCodes.BadHeader, $"{ParamDbHeaders.TimeoutMs}: '{text}' is not a number of milliseconds from 0 to {maxMs}.");
            return false;
        }
        timeout = TimeSpan.FromMilliseconds(ms);
        return true;
    }
}
