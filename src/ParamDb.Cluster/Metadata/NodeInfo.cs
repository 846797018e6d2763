using System.Globalization;

namespace ParamDb.Cluster.Metadata;

/// <summary>Where a node stands in the ring's life cycle; a byte on the wire, values never renumbered.</summary>
public enum NodeState : byte
{
    /// <summary>Added, not yet serving its ranges (data is being moved to it).</summary>
    Joining = 0,

    /// <summary>Serving its ranges.</summary>
    Up = 1,

    /// <summary>Known but unreachable; its replicas serve its ranges.</summary>
    Down = 2,

    /// <summary>Handing its ranges off before removal.</summary>
    Leaving = 3,
}

/// <summary>
/// A server of the group: its id and the three addresses other nodes and clients reach it at, each
/// <c>host:port</c>.
/// </summary>
/// <param name="Id">Node id, <c>[A-Za-z0-9_.-]{1,64}</c>; stable across restarts.</param>
/// <param name="Http">The HTTP/1.1 API address (what clients are redirected to).</param>
/// <param name="H2">The HTTP/2 (gRPC-style streaming) address.</param>
/// <param name="Raft">The server manager's Raft TCP address.</param>
/// <param name="State">Life-cycle state.</param>
public sealed record NodeInfo(string Id, string Http, string H2, string Raft, NodeState State)
{
    /// <summary>Longest node id, in characters.</summary>
    public const int MaxIdLength = 64;

    /// <summary>Longest <c>host:port</c> address, in characters.</summary>
    public const int MaxAddressLength = 255;

    /// <summary>True when <paramref name="id"/> may name a node: <c>[A-Za-z0-9_.-]{1,64}</c>.</summary>
    public static bool IsValidId(ReadOnlySpan<char> id)
    {
        if (id.Length is 0 or > MaxIdLength) return false;
        foreach (char c in id)
        {
            bool ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '.' or '-';
            if (!ok) return false;
        }
        return true;
    }

    /// <summary>
    /// True when <paramref name="address"/> is <c>host:port</c>: a non-empty host without spaces (an IPv6 host in
    /// brackets) and a port 1…65535, at most <see cref="MaxAddressLength"/> characters.
    /// </summary>
    public static bool IsValidAddress(ReadOnlySpan<char> address)
    {
        if (address.Length is 0 or > MaxAddressLength) return false;
        int colon = address.LastIndexOf(':');
        if (colon <= 0) return false;
        var host = address[..colon];
        var port = address[(colon + 1)..];
        if (host.ContainsAny(' ', '/', '\t')) return false;
        if (host.Contains(':') && !(host[0] == '[' && host[^1] == ']')) return false;
        if (port.Length is 0 or > 5) return false;
        foreach (char c in port)
            if (c is < '0' or > '9') return false;
        int value = int.Parse(port, NumberStyles.None, CultureInfo.InvariantCulture);
        return value is >= 1 and <= 65_535;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that breaks a rule.</summary>
    public void Validate()
    {
        if (Problem() is { } problem) throw new ArgumentException(problem);
    }

    /// <summary>The first rule a field breaks, or null.</summary>
    internal string? Problem()
    {
        if (!IsValidId(Id)) return $"Node id must match [A-Za-z0-9_.-]{{1,{MaxIdLength}}}; got \"{Id}\".";
        if (!IsValidAddress(Http)) return $"Node {Id}: http must be host:port; got \"{Http}\".";
        if (!IsValidAddress(H2)) return $"Node {Id}: h2 must be host:port; got \"{H2}\".";
        if (!IsValidAddress(Raft)) return $"Node {Id}: raft must be host:port; got \"{Raft}\".";
        if (!Enum.IsDefined(State)) return $"Node {Id}: unknown state {(byte)State}.";
        return null;
    }
}
