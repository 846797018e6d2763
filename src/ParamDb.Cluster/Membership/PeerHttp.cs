using System.Net.Http.Headers;

namespace ParamDb.Cluster.Membership;

/// <summary>
/// HTTP requests from this node to other members' REST APIs: a join, and metadata changes a follower hands to
/// the leader. Every request carries the cluster secret when one is set (<see cref="SecretHeader"/>).
/// </summary>
public sealed class PeerHttp : IDisposable
{
    /// <summary>The header a peer proves the cluster secret in.</summary>
    public const string SecretHeader = "ParamDb-Cluster-Secret";

    /// <summary>The header that marks a request a peer makes on behalf of the cluster, not a client.</summary>
    public const string PeerHeader = "ParamDb-Peer";

    private readonly HttpClient _client;
    private readonly HttpClient _bulk;
    private readonly string? _secret;

    /// <summary>A client for peers, with the given secret (or none).</summary>
    public PeerHttp(string? secret, string selfId)
    {
        _secret = secret;
        _client = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5), PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
        _client.DefaultRequestHeaders.Add(PeerHeader, selfId);
        // Exports and imports move whole tables: minutes for a large one, so no overall timeout; the caller's
        // token (the client's request) bounds them instead.
        _bulk = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5), PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _bulk.DefaultRequestHeaders.Add(PeerHeader, selfId);
    }

    /// <summary>Sends a request to <c>http://<paramref name="address"/><paramref name="path"/></c>.</summary>
    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string address, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(method, new Uri($"http://{address}{path}")) { Content = content };
        if (_secret is not null) request.Headers.Add(SecretHeader, _secret);
        return _client.SendAsync(request, cancellationToken);
    }

    /// <summary>
    /// Sends a request that moves a table (an export read, an import slice written) and returns once the reply's
    /// headers are in, its body left to stream. No timeout beyond <paramref name="cancellationToken"/>.
    /// </summary>
    public Task<HttpResponseMessage> SendBulkAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_secret is not null) request.Headers.Add(SecretHeader, _secret);
        return _bulk.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>JSON content of <paramref name="utf8"/>.</summary>
    public static HttpContent Json(byte[] utf8)
    {
        var content = new ByteArrayContent(utf8);
        content.Headers.ContentType = new MediaTypeHeaderValue(Protocol.MediaTypes.Json);
        return content;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _client.Dispose();
        _bulk.Dispose();
    }
}
