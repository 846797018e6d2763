using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ParamDb.Client.Internal;
using static ParamDb.Client.Internal.BatchChecks;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Client;

/// <summary>
/// A client of one ParamDb server: table management over JSON, push and pull over the binary KV block
/// (docs/wire-format.md).
/// <code>
/// using var db = new ParamDbClient(new Uri("http://127.0.0.1:7420"));
/// await db.CreateTableAsync("emb", new TableSchema { Dim = 4 });
/// await db.PushAsync("emb", new ulong[] { 1, 5 }, new float[8]);   // keys strictly ascending
/// float[] rows = await db.PullAsync("emb", new ulong[] { 1, 5 });  // 2 × 4 floats, row-major
/// </code>
/// </summary>
/// <remarks>
/// <para><b>Clusters.</b> With <see cref="ParamDbClientOptions.Routing"/> <see cref="ParamDbRouting.Auto"/> (the default)
/// the first data call asks <c>GET /v1/cluster</c>; when the server is a cluster of several nodes, every push, pull and
/// row read is sliced by the ring and each node gets its own keys in one request carrying <c>ParamDb-Ring-Epoch</c>,
/// and the replies are put back in key order. A node that answers 421 <c>wrong_node</c> makes the client fetch the
/// ring again and send that node's keys again (up to three times). A single node is spoken to exactly as before.</para>
/// Thread-safe: one instance serves any number of concurrent calls and should live as long as the
/// application (it pools connections). Errors the server reports throw <see cref="ParamDbException"/>;
/// arguments the server would refuse (unsorted keys, a destination of the wrong size) throw
/// <see cref="ArgumentException"/> before anything is sent.
/// </remarks>
public sealed partial class ParamDbClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _base;
    private readonly Version _version;
    private readonly HttpVersionPolicy _versionPolicy;
    private readonly bool _lz4;
    private readonly RingSource _ring;
    private readonly TimeSpan _noLeaderWait;

    /// <summary>Creates a client of the server at <paramref name="baseAddress"/>, e.g. <c>http://127.0.0.1:7420</c>.</summary>
    /// <param name="baseAddress">The server's address; a path prefix is kept.</param>
    /// <param name="options">Compression, timeout and HTTP version; defaults when null.</param>
    public ParamDbClient(Uri baseAddress, ParamDbClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        options ??= new ParamDbClientOptions();
        var handler = new SocketsHttpHandler
        {
            // LZ4 is decoded here, per call; the handler must leave Content-Encoding alone.
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            // 16 MiB, the largest accepted: a 4 MiB pull reply then flows without waiting for window updates.
            InitialHttp2StreamWindowSize = 16 * 1024 * 1024,
        };
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = options.Timeout };
        _ownsHttp = true;
        _base = WithTrailingSlash(baseAddress);
        _version = options.HttpVersion;
        _versionPolicy = HttpVersionPolicy.RequestVersionExact;
        _lz4 = options.Compression == ParamDbCompression.Lz4;
        _ring = NewRingSource(options.Routing, options.FailoverWait);
        _noLeaderWait = options.NoLeaderWait;
    }

    /// <summary>
    /// Creates a client over a caller-owned <paramref name="http"/> (not disposed with this client). Its
    /// <see cref="HttpClient.BaseAddress"/> names the server; its default request version, version policy and
    /// timeout apply. Leave its automatic decompression off, or LZ4 replies cannot be told apart.
    /// </summary>
    /// <param name="http">A client whose BaseAddress is set.</param>
    /// <param name="options">Only <see cref="ParamDbClientOptions.Compression"/>, <see cref="ParamDbClientOptions.Routing"/>, <see cref="ParamDbClientOptions.NoLeaderWait"/> and <see cref="ParamDbClientOptions.FailoverWait"/> are read.</param>
    public ParamDbClient(HttpClient http, ParamDbClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        _http = http;
        _ownsHttp = false;
        _base = WithTrailingSlash(http.BaseAddress ?? throw new ArgumentException("The HttpClient needs a BaseAddress.", nameof(http)));
        _version = http.DefaultRequestVersion;
        _versionPolicy = http.DefaultVersionPolicy;
        _lz4 = options?.Compression == ParamDbCompression.Lz4;
        _ring = NewRingSource(options?.Routing ?? ParamDbRouting.Auto, options?.FailoverWait ?? new ParamDbClientOptions().FailoverWait);
        _noLeaderWait = options?.NoLeaderWait ?? new ParamDbClientOptions().NoLeaderWait;
    }

    /// <summary>The server's address, ending in '/'.</summary>
    public Uri BaseAddress => _base;

    /// <summary>Creates a table, or confirms an identical one (<c>PUT /v1/tables/{name}</c>).</summary>
    /// <param name="name">Table name, <c>[A-Za-z0-9_.-]{1,128}</c>.</param>
    /// <param name="schema">Dim, initializer, updater; the server fills in defaults.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The table as stored, with its normalized schema.</returns>
    /// <exception cref="ParamDbException"><c>table_exists</c> when the name is taken by another schema; <c>invalid_schema</c>.</exception>
    public async Task<TableInfo> CreateTableAsync(string name, TableSchema schema, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(schema);
        using var request = NewRequest(HttpMethod.Put, TablePath(name));
        request.Content = JsonContent.Create(schema, ProtocolJson.Default.TableSchema);
        return await SendForJsonAsync(request, ProtocolJson.Default.TableInfo, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A table's schema and statistics (<c>GET /v1/tables/{name}</c>).</summary>
    /// <exception cref="ParamDbException"><c>table_not_found</c>.</exception>
    public async Task<TableInfo> GetTableAsync(string name, CancellationToken cancellationToken = default)
    {
        using var request = NewRequest(HttpMethod.Get, TablePath(name));
        return await SendForJsonAsync(request, ProtocolJson.Default.TableInfo, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every table (<c>GET /v1/tables</c>).</summary>
    public async Task<IReadOnlyList<TableInfo>> ListTablesAsync(CancellationToken cancellationToken = default)
    {
        using var request = NewRequest(HttpMethod.Get, "v1/tables");
        var list = await SendForJsonAsync(request, ProtocolJson.Default.TableList, cancellationToken).ConfigureAwait(false);
        return list.Tables;
    }

    /// <summary>Deletes a table and its rows (<c>DELETE /v1/tables/{name}</c>).</summary>
    /// <exception cref="ParamDbException"><c>table_not_found</c>.</exception>
    public async Task DeleteTableAsync(string name, CancellationToken cancellationToken = default)
    {
        using var request = NewRequest(HttpMethod.Delete, TablePath(name));
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The server's status, version and addresses (<c>GET /v1/health</c>).</summary>
    public async Task<HealthReply> HealthAsync(CancellationToken cancellationToken = default)
    {
        using var request = NewRequest(HttpMethod.Get, "v1/health");
        return await SendForJsonAsync(request, ProtocolJson.Default.HealthReply, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Takes a checkpoint now (<c>POST /v1/checkpoint</c>) and returns when it is durable.</summary>
    public async Task<CheckpointReply> CheckpointAsync(CancellationToken cancellationToken = default)
    {
        using var request = NewRequest(HttpMethod.Post, "v1/checkpoint");
        return await SendForJsonAsync(request, ProtocolJson.Default.CheckpointReply, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Disposes the HTTP client this instance created; a caller-supplied one is left alone.</summary>
    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }

    private HttpRequestMessage NewRequest(HttpMethod method, string relativePath) => NewRequest(method, _base, relativePath);

    private HttpRequestMessage NewRequest(HttpMethod method, Uri node, string relativePath) =>
        new(method, new Uri(node, relativePath)) { Version = _version, VersionPolicy = _versionPolicy };

    /// <summary>Where this client's cluster map comes from; the worker routes by its REST client's.</summary>
    internal RingSource Ring => _ring;

    private RingSource NewRingSource(ParamDbRouting routing, TimeSpan failoverWait) =>
        new(FetchClusterAsync, routing == ParamDbRouting.Auto, _base.Scheme, _version.Major >= 2) { FailoverWait = failoverWait };

    /// <summary><c>GET /v1/cluster</c> from <paramref name="node"/> (a node's REST base address), or from this client's address when null.</summary>
    internal async Task<ClusterView> FetchClusterAsync(Uri? node, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Get, node ?? _base, "v1/cluster");
        return await SendForJsonAsync(request, ProtocolJson.Default.ClusterView, cancellationToken).ConfigureAwait(false);
    }

    private static string TablePath(string name)
    {
        CheckName(name);
        // Valid names are unreserved URI characters and never "." or "..", so no escaping is needed.
        return "v1/tables/" + name;
    }


    /// <summary>Sends and returns the reply when it is a success; otherwise throws its problem as <see cref="ParamDbException"/>.</summary>
    /// <remarks>
    /// A <c>503 no_leader</c> reply (a cluster between leaders) changed nothing, so the request is sent again, a copy
    /// of it, after the reply's <c>Retry-After</c>, until <see cref="ParamDbClientOptions.NoLeaderWait"/> has passed.
    /// </remarks>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)_noLeaderWait.TotalMilliseconds;
        HttpRequestMessage attempt = request;
        try
        {
            while (true)
            {
                var response = await _http.SendAsync(attempt, completion, cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode) return response;
                ParamDbException problem;
                TimeSpan after;
                using (response)
                {
                    problem = await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
                    after = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromMilliseconds(250);
                }
                // A streamed body cannot be sent twice; every body this client builds can.
                if (problem.Code != ProblemCodes.NoLeader || request.Content is StreamContent
                    || Environment.TickCount64 + (long)after.TotalMilliseconds > deadline) throw problem;
                await Task.Delay(after, cancellationToken).ConfigureAwait(false);
                Release(attempt, request);
                attempt = Copy(request);
            }
        }
        finally
        {
            Release(attempt, request);
        }

        // A copy shares the original's content, which the caller disposes with the original.
        static void Release(HttpRequestMessage attempt, HttpRequestMessage request)
        {
            if (attempt == request) return;
            attempt.Content = null;
            attempt.Dispose();
        }
    }

    /// <summary>A request to send again: same method, address, version, headers and content (JSON or bytes, readable twice).</summary>
    private static HttpRequestMessage Copy(HttpRequestMessage request)
    {
        var copy = new HttpRequestMessage(request.Method, request.RequestUri)
        {
            Version = request.Version,
            VersionPolicy = request.VersionPolicy,
            Content = request.Content,
        };
        foreach (var header in request.Headers) copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
        return copy;
    }

    private async Task<T> SendForJsonAsync<T>(HttpRequestMessage request, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        request.Headers.Accept.ParseAdd(MediaTypes.Json);
        using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await using var body = await KvReply.OpenBodyAsync(response.Content, cancellationToken).ConfigureAwait(false);
        return await JsonSerializer.DeserializeAsync(body, type, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidDataException($"The server replied null where a {typeof(T).Name} belongs.");
    }

    /// <summary>Turns a non-2xx reply into a <see cref="ParamDbException"/>, reading its problem JSON when there is one.</summary>
    private static async Task<ParamDbException> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        int status = (int)response.StatusCode;
        ProblemReply? problem = null;
        string? unreadable = null;
        string? mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is MediaTypes.Problem or MediaTypes.Json)
        {
            try
            {
                await using var body = await KvReply.OpenBodyAsync(response.Content, cancellationToken).ConfigureAwait(false);
                problem = await JsonSerializer.DeserializeAsync(body, ProtocolJson.Default.ProblemReply, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
            {
                unreadable = $"The error reply's body could not be read: {e.Message}";
            }
        }
        return ParamDbException.From(status, problem, unreadable ?? response.ReasonPhrase);
    }

    private static Uri WithTrailingSlash(Uri uri)
    {
        if (!uri.IsAbsoluteUri) throw new ArgumentException($"The server address must be absolute, like http://127.0.0.1:7420; got \"{uri}\".", nameof(uri));
        return uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
    }
}
