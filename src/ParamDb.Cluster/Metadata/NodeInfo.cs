using System.Globalization;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Metadata;

/// <summary>
/// A server of the group: its id and the three addresses other nodes and clients reach it at, each
/// <c>host:port</c>.
/// </summary>
/// <param name="Id">Node id, <c>[A-Za-z0-9_.-]{1,64}</c>; stable across restarts.</param>
/// <param name="Http">The HTTP/1.1 API address (what clients are redirected to).</param>
/// <param name="H2">The HTTP/2 (gRPC-style streaming) address.</param>
/// <param name="Raft">The server manager's Raft TCP address.</param>
/// <param name="State">Life-cycle state.</param>
/// <param name="Tokens">The node's ring tokens, ascending (V of them; chosen by the leader when it joined).</param>
public sealed record NodeInfo(string Id, string Http, string H2, string Raft, NodeState State, ulong[] Tokens)
{
    /// <summary>A node without tokens (tests, and commands that name a node only by its addresses).</summary>
    public NodeInfo(string id, string http, string h2, string raft, NodeState state) : this(id, http, h2, raft, state, []) { }

    /// <summary>
    /// The ring epoch at which this node was last declared <see cref="NodeState.Down"/> while it was
    /// <see cref="NodeState.Up"/>; 0 when it never was. Up, it held everything acknowledged on its arcs (a push is
    /// acknowledged only once every backup that is not down has it), so of a chain whose nodes are all down or
    /// joining, the one that left up last holds every acknowledged push of the chain's arcs (docs/replication.md).
    /// </summary>
    public ulong LeftUpAt { get; init; }

    /// <summary>Equal when every field is, the tokens compared element by element.</summary>
    public bool Equals(NodeInfo? other) =>
        other is not null && Id == other.Id && Http == other.Http && H2 == other.H2 && Raft == other.Raft && State == other.State
        && LeftUpAt == other.LeftUpAt && Tokens.AsSpan().SequenceEqual(other.Tokens);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Id, Http, H2, Raft, State, Tokens.Length);

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
        if (Tokens.Length > ushort.MaxValue) return $"Node {Id}: {Tokens.Length} tokens; at most {ushort.MaxValue}.";
        for (int i = 1; i < Tokens.Length; i++)
            if (Tokens[i] <= Tokens[i - 1]) return $"Node {Id}: tokens must be strictly ascending.";
        return null;
    }
}
