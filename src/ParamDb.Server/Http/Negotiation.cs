using Microsoft.Net.Http.Headers;
using ParamDb.Protocol;

namespace ParamDb.Server.Http;

/// <summary>The two body formats of the data endpoints.</summary>
public enum BodyFormat
{
    /// <summary>The binary KV block, <c>application/x-paramdb-kv</c>.</summary>
    Kv,
    /// <summary>The JSON form, <c>application/json</c>.</summary>
    Json,
}

/// <summary>Content negotiation for the data endpoints (docs/wire-format.md): the reply follows <c>Accept</c>, else the request's type.</summary>
public static class Negotiation
{
    /// <summary>The format of the request body, from <c>Content-Type</c>.</summary>
    public static bool TryRequestFormat(HttpRequest request, out BodyFormat format, out ProtocolError error)
    {
        format = BodyFormat.Json;
        error = default;
        var contentType = request.ContentType;
        if (contentType is not null && MediaTypeHeaderValue.TryParse(contentType, out var media))
        {
            if (media.MediaType.Equals(MediaTypes.KvBlock, StringComparison.OrdinalIgnoreCase)) { format = BodyFormat.Kv; return true; }
            if (media.MediaType.Equals(MediaTypes.Json, StringComparison.OrdinalIgnoreCase)) { format = BodyFormat.Json; return true; }
        }
        error = new ProtocolError(415, ProblemCodes.UnsupportedMediaType,
            $"Content-Type '{contentType ?? "(none)"}' is not accepted here; send {MediaTypes.KvBlock} or {MediaTypes.Json}.");
        return false;
    }

    /// <summary>The format of the reply: the first of ours named by <c>Accept</c>; the request's for none or a wildcard.</summary>
    public static bool TryReplyFormat(HttpRequest request, BodyFormat requestFormat, out BodyFormat format, out ProtocolError error)
    {
        format = requestFormat;
        error = default;
        var accept = request.GetTypedHeaders().Accept;
        if (accept.Count == 0) return true;
        bool wildcard = false;
        foreach (var item in accept)
        {
            if (item.Quality == 0) continue;
            var type = item.MediaType;
            if (type.Equals(MediaTypes.KvBlock, StringComparison.OrdinalIgnoreCase)) { format = BodyFormat.Kv; return true; }
            if (type.Equals(MediaTypes.Json, StringComparison.OrdinalIgnoreCase)) { format = BodyFormat.Json; return true; }
            if (type.Equals("*/*", StringComparison.Ordinal) || type.Equals("application/*", StringComparison.OrdinalIgnoreCase)) wildcard = true;
        }
        if (wildcard) return true;
        error = new ProtocolError(406, ProblemCodes.NotAcceptable,
            $"Accept '{request.Headers.Accept}' names no type this endpoint produces; ask for {MediaTypes.KvBlock} or {MediaTypes.Json}.");
        return false;
    }

    /// <summary>True when the client asked for an LZ4-compressed reply with <c>Accept-Encoding: lz4</c>.</summary>
    public static bool AcceptsLz4(HttpRequest request)
    {
        foreach (var value in request.GetTypedHeaders().AcceptEncoding)
        {
            // "lz4;q=0" refuses it.
            if (value.Value.Equals(MediaTypes.Lz4Encoding, StringComparison.OrdinalIgnoreCase)) return value.Quality is not 0;
        }
        return false;
    }
}
