using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using ParamDb.Protocol;
using ParamDb.Server.Options;

namespace ParamDb.Server.Http;

/// <summary>
/// Keeps web pages away from the node. The node has no authentication, so a page open in a browser on the same
/// machine could otherwise change it: by DNS rebinding (the page's own name made to resolve to 127.0.0.1, so
/// the browser sends requests to the node under the attacker's <c>Host</c>), or by a plain form post to
/// <c>http://127.0.0.1:7420</c> from another site (a "simple" request that needs no CORS preflight, e.g.
/// <c>POST /v1/checkpoint</c>). Clients that are not browsers send neither a foreign <c>Host</c> nor
/// <c>Origin</c>/<c>Sec-Fetch-Site</c>, so they pass; so does Swagger UI, served by the node itself.
/// </summary>
public static class BrowserGuard
{
    /// <summary>
    /// Adds the checks first in the pipeline: a request from a foreign host or site is answered before it is
    /// routed, so it reaches no endpoint and changes nothing.
    /// </summary>
    public static WebApplication UseBrowserGuard(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var settings = app.Services.GetRequiredService<NodeSettings>();
        var server = app.Services.GetRequiredService<IServer>();
        // The bound addresses are known only once Kestrel listens, which is before the first request.
        var anyHost = new Lazy<bool>(() => AnswersAnyHost(settings.AllowedHosts, server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []));
        app.Use(async (context, next) =>
        {
            HttpRequest request = context.Request;
            string host = request.Host.Host;
            if (!anyHost.Value && !IsAllowedHost(host, settings.AllowedHosts))
            {
                await Problems.Of(400, ProblemCodes.HostNotAllowed,
                    $"The Host '{request.Host}' is not answered by this node: it answers loopback names (localhost, 127.0.0.1, [::1])"
                    + (settings.AllowedHosts is { } hosts ? $" and {string.Join(", ", hosts)}" : "")
                    + ". A node reached under another name is configured with --allowed-hosts.").ExecuteAsync(context);
                return;
            }
            if (CrossSiteReason(request) is { } reason)
            {
                await Problems.Of(403, ProblemCodes.CrossSiteRequest,
                    $"{request.Method} from a web page of another site is refused ({reason}): the node has no authentication, "
                    + "so only pages it serves itself (Swagger UI at /swagger) may change it.").ExecuteAsync(context);
                return;
            }
            await next(context);
        });
        return app;
    }

    /// <summary>
    /// Whether any <c>Host</c> is answered: when <c>--allowed-hosts</c> lists <c>*</c>, or when it is not given and some
    /// listen address is not loopback (such a node is meant to be reached under names of its own).
    /// </summary>
    /// <param name="allowedHosts">The configured names; null when not configured.</param>
    /// <param name="boundAddresses">The addresses Kestrel listens on, e.g. <c>http://127.0.0.1:7420</c>.</param>
    public static bool AnswersAnyHost(IReadOnlyList<string>? allowedHosts, IEnumerable<string> boundAddresses)
    {
        ArgumentNullException.ThrowIfNull(boundAddresses);
        if (allowedHosts is not null) return allowedHosts.Contains("*");
        foreach (string address in boundAddresses)
        {
            // An address that does not parse ("http://*:80", "http://+:80") is a wildcard: not loopback.
            if (!Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) || !IsLoopback(uri.Host)) return true;
        }
        return false;
    }

    /// <summary>Whether <paramref name="host"/> (a <c>Host</c> header's name, port removed) names loopback or an allowed host.</summary>
    public static bool IsAllowedHost(string host, IReadOnlyList<string>? allowedHosts)
    {
        // HTTP/1.0 may omit Host (HTTP/1.1 without one is refused by Kestrel); a browser always sends one.
        if (string.IsNullOrEmpty(host) || IsLoopback(host)) return true;
        return allowedHosts is not null && allowedHosts.Contains(Bare(host), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Whether <paramref name="host"/> is <c>localhost</c> or a loopback IP literal (127.0.0.0/8, <c>::1</c>, with or without brackets).</summary>
    public static bool IsLoopback(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        string bare = Bare(host);
        return bare.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(bare, out IPAddress? ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>
    /// Why a request is a state change from a page of another site, or null when it is not: a method other than
    /// GET, HEAD or OPTIONS with <c>Sec-Fetch-Site: cross-site</c>, or with an <c>Origin</c> whose host is neither the
    /// request's own nor loopback.
    /// </summary>
    public static string? CrossSiteReason(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method)) return null;
        if (string.Equals(request.Headers["Sec-Fetch-Site"], "cross-site", StringComparison.OrdinalIgnoreCase))
            return "Sec-Fetch-Site: cross-site";
        string? origin = request.Headers.Origin;
        if (string.IsNullOrEmpty(origin)) return null;
        // "null" is the origin of sandboxed frames and local files: no site the node could trust.
        if (!Uri.TryCreate(origin, UriKind.Absolute, out Uri? uri) || string.IsNullOrEmpty(uri.Host)) return $"Origin: {origin}";
        if (IsLoopback(uri.Host) || string.Equals(Bare(uri.Host), Bare(request.Host.Host), StringComparison.OrdinalIgnoreCase)) return null;
        return $"Origin: {origin}";
    }

    /// <summary>An IPv6 literal without its brackets, so <c>[::1]</c> from a Host header and <c>::1</c> compare equal.</summary>
    private static string Bare(string host) => host.Length > 1 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host;
}
