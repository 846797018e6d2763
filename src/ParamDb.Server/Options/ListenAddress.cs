using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace ParamDb.Server.Options;

/// <summary>A parsed <c>HOST:PORT</c> listen option: an IP literal (<c>127.0.0.1</c>, <c>[::1]</c>, <c>0.0.0.0</c>) or <c>localhost</c>.</summary>
/// <param name="Address">The IP address; null for localhost (both loopbacks).</param>
/// <param name="Port">The port; 0 picks a free one.</param>
public sealed record ListenAddress(IPAddress? Address, int Port)
{
    /// <summary>Parses <paramref name="text"/>, or explains why not.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out ListenAddress? result, [NotNullWhen(false)] out string? error)
    {
        result = null;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is < 0 or > 65535)
        {
            error = $"'{text}' is not HOST:PORT (e.g. 127.0.0.1:7420).";
            return false;
        }
        var host = text[..colon].Trim('[', ']');
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            result = new ListenAddress(null, port);
        }
        else if (IPAddress.TryParse(host, out var ip))
        {
            result = new ListenAddress(ip, port);
        }
        else
        {
            error = $"'{host}' in '{text}' is not an IP address or localhost; name resolution is not done for listen addresses.";
            return false;
        }
        error = null;
        return true;
    }
}
