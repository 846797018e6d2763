using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace ParamDb.Server.Hosting;

/// <summary>
/// The two Kestrel endpoints. Kestrel rewrites a <see cref="ListenOptions"/>' endpoint with the bound one
/// once listening, so after start these give the real ports even when port 0 was asked for.
/// </summary>
public sealed class ListenEndpoints
{
    /// <summary>The HTTP/1.1 endpoint.</summary>
    public ListenOptions? Http1 { get; set; }

    /// <summary>The HTTP/2 cleartext endpoint.</summary>
    public ListenOptions? Http2 { get; set; }

    /// <summary>The HTTP/1.1 base address, e.g. <c>http://127.0.0.1:7420</c>.</summary>
    public string? Http1Url => Url(Http1);

    /// <summary>The HTTP/2 cleartext base address.</summary>
    public string? Http2Url => Url(Http2);

    private static string? Url(ListenOptions? o) => o?.EndPoint switch
    {
        IPEndPoint ip => $"http://{(ip.Address.Equals(IPAddress.IPv6Loopback) || ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip.Address}]" : ip.Address.ToString())}:{ip.Port}",
        { } other => $"http://{other}",
        null => null,
    };
}
