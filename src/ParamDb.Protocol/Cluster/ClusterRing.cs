using System.Globalization;
using System.Runtime.CompilerServices;

namespace ParamDb.Protocol.Cluster;

/// <summary>
/// The ring of a server group at one epoch: every node's V tokens merged on the 64-bit ring. A position's
/// <b>primary</b> is the node of the first token at or after it, clockwise (wrapping past 2^64 − 1 to the
/// smallest token); its <b>backups</b> are the next R − 1 distinct nodes clockwise. A node's tokens are by default
/// exactly <see cref="Ring.ForNode"/>(id, V), so the arcs a node is primary for end at the same tokens as the
/// ranges its store keeps clocks for: for a position X is primary of, <c>Ring.ForNode(X, V).RangeOf(position)</c>
/// names X's token that ends the position's arc. Immutable, so one instance can be shared by every request of an
/// epoch. The per-key members (<see cref="PrimaryOf(ulong)"/>, <see cref="ReplicasOf(ulong, Span{int})"/>,
/// <see cref="Owns"/>) do one binary search over the N × V merged tokens (13 steps for 100 nodes × 64) and
/// allocate nothing.
/// </summary>
public sealed class ClusterRing
{
    /// <summary>Copies of each key, primary included, by default: 2 survives one node loss at 2× the memory.</summary>
    public const int DefaultReplicas = 2;

    // Merged tokens, ascending; a token two nodes share comes once per node, the node of the ordinally smaller
    // id first, so that node is primary of the shared arc and the other its first backup on every client.
    private readonly ulong[] _tokens;
    private readonly int[] _owners;
    // Per merged token: the node that serves the arc (the first of its replica set that is up), else its owner.
    private readonly int[] _primaries;
    private readonly NodeState[] _states;
    // Per merged token i, up to setStride node indices at [i * setStride …], _setCounts[i] of them: the primary, then
    // the rest of its chain, then its stand-ins. Precomputed so ReplicasOf is a search and a copy: N × V × min(2R, N)
    // ints, 154 KB for 100 nodes × 64 × R 3.
    private readonly int[] _replicaSets;
    private readonly byte[] _setCounts;
    // Per merged token i: how many of its set's first nodes hold a whole copy (the chain and the stand-ins the server
    // manager counts caught up); the stand-ins after them are still being sent the arc.
    private readonly byte[] _copyCounts;
    private readonly bool[] _standInServes;
    private readonly int _replicaWidth;
    private readonly int _setStride;
    private readonly string[] _ids;
    private readonly Ring[] _nodeRings;
    private readonly Dictionary<string, int> _indexById;

    /// <summary>
    /// A ring of the nodes <paramref name="nodeIds"/>, each holding <see cref="Ring.ForNode"/>(id,
    /// <paramref name="virtualNodes"/>): the tokens every node derives from its own id, so no token list needs
    /// to be agreed on.
    /// </summary>
    /// <param name="epoch">The ring epoch this membership was committed at (0 on a single node).</param>
    /// <param name="replicas">R, copies per key, primary included (at least 1).</param>
    /// <param name="virtualNodes">V, tokens per node (at least 1).</param>
    /// <param name="nodeIds">Distinct, non-empty node ids, in any order.</param>
    public ClusterRing(ulong epoch, int replicas, int virtualNodes, IEnumerable<string> nodeIds)
        : this(epoch, replicas, virtualNodes, DefaultRings(nodeIds, virtualNodes))
    {
    }

    /// <summary>
    /// A ring of nodes with given tokens, e.g. as a <c>GET /v1/cluster</c> document lists them
    /// (<see cref="FromView"/>). Nodes are indexed by id in ordinal order whatever order they come in, so every
    /// client that sees the same membership numbers the nodes the same way.
    /// </summary>
    /// <param name="epoch">The ring epoch this membership was committed at (0 on a single node).</param>
    /// <param name="replicas">R, copies per key, primary included (at least 1).</param>
    /// <param name="virtualNodes">V, tokens per node as the cluster is configured; recorded, not checked against the rings.</param>
    /// <param name="nodes">Node id → the node's tokens; ids distinct and non-empty, at least one node.</param>
    /// <param name="states">
    /// Each node's state (absent: up). An arc is served by the first node of its replica set that is
    /// <see cref="NodeState.Up"/> (failover: a down primary's first backup); a joining or down node serves none.
    /// </param>
    /// <param name="standIns">
    /// (token, node id) pairs: the server manager counts that node a caught-up <b>stand-in</b> of the arc ending at
    /// that merged token (docs/replication.md, "Re-replication"). An arc whose chain (its owner and the next R − 1
    /// distinct nodes) has fewer than R nodes up gets that many stand-ins: the next distinct nodes clockwise past the
    /// chain that are up, those counted caught up first. An arc whose chain has no node up is served by its first
    /// caught-up stand-in that is up.
    /// </param>
    public ClusterRing(ulong epoch, int replicas, int virtualNodes, IEnumerable<KeyValuePair<string, Ring>> nodes,
        IReadOnlyDictionary<string, NodeState>? states = null, IEnumerable<KeyValuePair<ulong, string>>? standIns = null)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentOutOfRangeException.ThrowIfLessThan(replicas, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(virtualNodes, 1);
        KeyValuePair<string, Ring>[] members = [.. nodes];
        if (members.Length == 0) throw new ArgumentException("A cluster ring needs at least one node.", nameof(nodes));
        foreach (var (id, ring) in members)
        {
            if (string.IsNullOrEmpty(id)) throw new ArgumentException("A node id is null or empty.", nameof(nodes));
            if (ring is null) throw new ArgumentException($"Node '{id}' has no tokens.", nameof(nodes));
        }
        Array.Sort(members, static (a, b) => string.CompareOrdinal(a.Key, b.Key));

        Epoch = epoch;
        Replicas = replicas;
        VirtualNodes = virtualNodes;
        _ids = new string[members.Length];
        _nodeRings = new Ring[members.Length];
        _indexById = new Dictionary<string, int>(members.Length, StringComparer.Ordinal);
        int total = 0;
        for (int n = 0; n < members.Length; n++)
        {
            _ids[n] = members[n].Key;
            _nodeRings[n] = members[n].Value;
            if (!_indexById.TryAdd(_ids[n], n)) throw new ArgumentException($"Node '{_ids[n]}' is listed twice.", nameof(nodes));
            total += _nodeRings[n].Count;
        }
        Nodes = Array.AsReadOnly(_ids);

        // (token, node index) pairs sorted by token then index: within a node tokens are distinct (Ring removes
        // duplicates), so the order is total and the same on every client.
        var merged = new (ulong Token, int Node)[total];
        int k = 0;
        for (int n = 0; n < _nodeRings.Length; n++)
        {
            foreach (ulong token in _nodeRings[n].Tokens) merged[k++] = (token, n);
        }
        Array.Sort(merged);
        _tokens = new ulong[total];
        _owners = new int[total];
        for (int i = 0; i < total; i++) (_tokens[i], _owners[i]) = merged[i];

        _states = new NodeState[_ids.Length];
        for (int n = 0; n < _ids.Length; n++)
            _states[n] = states is not null && states.TryGetValue(_ids[n], out NodeState state) ? state : NodeState.Up;

        _replicaWidth = Math.Min(replicas, _ids.Length);
        _setStride = Math.Min(2 * _replicaWidth, _ids.Length);
        _replicaSets = new int[total * _setStride];
        _setCounts = new byte[total];
        _copyCounts = new byte[total];
        _standInServes = new bool[total];
        _primaries = new int[total];
        Dictionary<ulong, List<int>>? caughtUp = null;
        if (standIns is not null)
        {
            caughtUp = [];
            foreach (var (token, id) in standIns)
            {
                if (!_indexById.TryGetValue(id, out int n)) continue;   // a node since removed
                if (!caughtUp.TryGetValue(token, out List<int>? list)) caughtUp[token] = list = [];
                list.Add(n);
            }
        }
        Span<int> chain = stackalloc int[_replicaWidth];
        var beyond = new List<int>();
        for (int i = 0; i < total; i++)
        {
            int found = 0;
            int j = i;
            // Every node has at least one token, so one lap finds min(R, N) distinct nodes.
            for (; found < _replicaWidth; j = j + 1 == total ? 0 : j + 1)
            {
                int node = _owners[j];
                if (!chain[..found].Contains(node)) chain[found++] = node;
            }
            int up = 0;
            foreach (int node in chain) if (_states[node] == NodeState.Up) up++;
            beyond.Clear();
            int caughtUpFirst = 0;
            if (up < _replicaWidth && _ids.Length > _replicaWidth)
                caughtUpFirst = StandIns(i, j, chain, _replicaWidth - up, caughtUp?.GetValueOrDefault(_tokens[i]), beyond);

            // Failover: the first node of the chain that is up serves the arc; with none, the first caught-up stand-in
            // (it holds every acknowledged push). It comes first in its set; the chain keeps its order otherwise, and
            // the stand-ins follow. With none up the owner stays first: the arc is unavailable.
            Span<int> set = _replicaSets.AsSpan(i * _setStride, _setStride);
            int serving = -1;
            foreach (int node in chain)
            {
                if (_states[node] != NodeState.Up) continue;
                serving = node;
                break;
            }
            if (serving < 0 && caughtUpFirst > 0)
            {
                serving = beyond[0];
                _standInServes[i] = true;
            }
            int count = 0;
            set[count++] = serving >= 0 ? serving : chain[0];
            foreach (int node in chain) if (node != set[0]) set[count++] = node;
            foreach (int node in beyond) if (node != set[0]) set[count++] = node;
            _setCounts[i] = (byte)count;
            _copyCounts[i] = (byte)(chain.Length + caughtUpFirst);
            _primaries[i] = set[0];
        }
    }

    /// <summary>
    /// Fills <paramref name="into"/> with up to <paramref name="wanted"/> stand-ins of arc <paramref name="arc"/>: the
    /// distinct nodes past its chain, clockwise from merged token <paramref name="from"/>, that are up, those in
    /// <paramref name="caughtUp"/> first. Returns how many of them are caught up.
    /// </summary>
    private int StandIns(int arc, int from, ReadOnlySpan<int> chain, int wanted, List<int>? caughtUp, List<int> into)
    {
        Span<bool> seen = _ids.Length <= 256 ? stackalloc bool[_ids.Length] : new bool[_ids.Length];
        foreach (int node in chain) seen[node] = true;
        int caughtUpCount = 0;
        // One lap at most; only arcs whose chain lost a node walk past it, so a ring with every node up pays nothing.
        for (int j = from; j != arc && caughtUpCount < wanted; j = j + 1 == _tokens.Length ? 0 : j + 1)
        {
            int node = _owners[j];
            if (seen[node]) continue;
            seen[node] = true;
            if (_states[node] != NodeState.Up) continue;
            if (caughtUp is not null && caughtUp.Contains(node))
            {
                into.Insert(caughtUpCount++, node);
                if (into.Count > wanted) into.RemoveAt(into.Count - 1);
            }
            else if (into.Count < wanted)
            {
                into.Add(node);
            }
        }
        return caughtUpCount;
    }

    /// <summary>The state of the node at <paramref name="nodeIndex"/> in this ring's epoch.</summary>
    public NodeState StateOf(int nodeIndex) => _states[nodeIndex];

    /// <summary>The node serving each arc of <see cref="Tokens"/>: its replica set's first node that is up (else its owner).</summary>
    public ReadOnlySpan<int> Primaries => _primaries;

    /// <summary>The ring epoch this membership was committed at; a client holding an older one refetches.</summary>
    public ulong Epoch { get; }

    /// <summary>R: copies per key, primary included, as configured (a ring of fewer nodes keeps fewer).</summary>
    public int Replicas { get; }

    /// <summary>V: tokens per node, as configured.</summary>
    public int VirtualNodes { get; }

    /// <summary>Node ids in ordinal order; a node's index here is what the per-key members return.</summary>
    public IReadOnlyList<string> Nodes { get; }

    /// <summary>Number of nodes, N.</summary>
    public int NodeCount => _ids.Length;

    /// <summary>
    /// Copies of a position wanted: min(R, N), since a key is never kept twice on one node. An arc's set
    /// (<see cref="ReplicasAt"/>) is its chain of that many nodes plus a stand-in for each of them not up.
    /// </summary>
    public int ReplicaCount => _replicaWidth;

    /// <summary>The longest set <see cref="ReplicasAt"/> returns: min(2R, N). The length <see cref="ReplicasOf(ulong, Span{int})"/> needs.</summary>
    public int MaxSetSize => _setStride;

    /// <summary>All tokens, ascending (N × V when no two collide); merged token i ends the arc (tokens[i-1], tokens[i]].</summary>
    public ReadOnlySpan<ulong> Tokens => _tokens;

    /// <summary>The node index owning each of <see cref="Tokens"/>.</summary>
    public ReadOnlySpan<int> Owners => _owners;

    /// <summary>The tokens of the node at <paramref name="nodeIndex"/>: its store's ranges.</summary>
    public Ring NodeRing(int nodeIndex) => _nodeRings[nodeIndex];

    /// <summary>The index of node <paramref name="id"/> in <see cref="Nodes"/>, or -1 when it is not in this ring.</summary>
    public int NodeIndex(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return _indexById.TryGetValue(id, out int index) ? index : -1;
    }

    /// <summary>
    /// The index in <see cref="Tokens"/> of the token ending the arc that holds <paramref name="position"/>:
    /// the first token ≥ it, wrapping to 0 past the largest. Of equal tokens, the first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int RangeOf(ulong position)
    {
        // Lower bound, not Array.BinarySearch: that may land on any of several equal tokens, and the tie rule
        // needs the first.
        ulong[] t = _tokens;
        int lo = 0, hi = t.Length;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            if (t[mid] < position) lo = mid + 1;
            else hi = mid;
        }
        return lo == t.Length ? 0 : lo;
    }

    /// <summary>The node index of the primary of <paramref name="position"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int PrimaryOf(ulong position) => _primaries[RangeOf(position)];

    /// <summary>The node index of the primary of <paramref name="key"/> in the table whose <see cref="Ring.NameHash"/> is <paramref name="tableHash"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int PrimaryOf(ulong tableHash, ulong key) => _primaries[RangeOf(Ring.Position(tableHash, key))];

    /// <summary>
    /// Writes the nodes that keep <paramref name="position"/> (<see cref="ReplicasAt"/>). Returns their count.
    /// </summary>
    /// <param name="position">A ring position.</param>
    /// <param name="destination">At least <see cref="MaxSetSize"/> long, else <see cref="ArgumentException"/>.</param>
    public int ReplicasOf(ulong position, Span<int> destination)
    {
        ReadOnlySpan<int> set = ReplicasAt(RangeOf(position));
        set.CopyTo(destination);
        return set.Length;
    }

    /// <summary>
    /// The nodes that keep the arc ending at merged token <paramref name="rangeIndex"/> (an index of
    /// <see cref="Tokens"/>, as <see cref="RangeOf"/> returns): the node that serves it, the rest of its chain (the
    /// next R − 1 distinct nodes clockwise from its owner, whatever their state), then its stand-ins (those counted
    /// caught up first: <see cref="CopiesAt"/>).
    /// </summary>
    public ReadOnlySpan<int> ReplicasAt(int rangeIndex) => _replicaSets.AsSpan(rangeIndex * _setStride, _setCounts[rangeIndex]);

    /// <summary>
    /// How many of <see cref="ReplicasAt"/>'s first nodes hold the arc whole (its chain, and the stand-ins counted
    /// caught up); the stand-ins after them are still being sent it, and neither serve nor count as copies.
    /// </summary>
    public int CopiesAt(int rangeIndex) => _copyCounts[rangeIndex];

    /// <summary>Whether the node at <paramref name="nodeIndex"/> is a stand-in of the arc (not of its chain), caught up or not.</summary>
    public bool IsStandIn(int rangeIndex, int nodeIndex) =>
        ReplicasAt(rangeIndex).IndexOf(nodeIndex) is var at && at >= 0 && !ChainAt(rangeIndex).Contains(nodeIndex);

    /// <summary>The arc's chain: its set without the stand-ins, in set order (the serving node first when it is of the chain).</summary>
    private ReadOnlySpan<int> ChainAt(int rangeIndex)
    {
        ReadOnlySpan<int> set = ReplicasAt(rangeIndex);
        // The set is [serving, rest of chain, stand-ins], and the serving node is a stand-in only when no chain node is up.
        return _standInServes[rangeIndex] ? set[1..(_replicaWidth + 1)] : set[.._replicaWidth];
    }

    /// <summary>As <see cref="ReplicasOf(ulong, Span{int})"/> for <paramref name="key"/> of a table.</summary>
    public int ReplicasOf(ulong tableHash, ulong key, Span<int> destination) =>
        ReplicasOf(Ring.Position(tableHash, key), destination);

    /// <summary>True when the node at <paramref name="nodeIndex"/> is the primary of <paramref name="key"/> of a table.</summary>
    public bool Owns(int nodeIndex, ulong tableHash, ulong key) => PrimaryOf(tableHash, key) == nodeIndex;

    /// <summary>True when the node at <paramref name="nodeIndex"/> keeps <paramref name="key"/> of a table, as primary or backup.</summary>
    public bool Holds(int nodeIndex, ulong tableHash, ulong key)
    {
        int arc = RangeOf(Ring.Position(tableHash, key));
        return ReplicasAt(arc)[..CopiesAt(arc)].Contains(nodeIndex);
    }

    /// <summary>
    /// The tokens of the node at <paramref name="nodeIndex"/> as <c>GET /v1/cluster</c> lists them: ascending
    /// decimal strings, since a u64 above 2^53 does not survive a JSON number in JavaScript.
    /// </summary>
    public string[] TokenStrings(int nodeIndex)
    {
        ReadOnlySpan<ulong> own = _nodeRings[nodeIndex].Tokens;
        var strings = new string[own.Length];
        for (int i = 0; i < own.Length; i++) strings[i] = own[i].ToString(CultureInfo.InvariantCulture);
        return strings;
    }

    /// <summary>
    /// The ring a <c>GET /v1/cluster</c> document describes: its epoch, R, V and every listed node with its listed
    /// tokens, whatever the node's state (a down primary still owns its arcs; clients fail over to the backups
    /// <see cref="ReplicasOf(ulong, Span{int})"/> names).
    /// </summary>
    /// <exception cref="FormatException">
    /// The document does not describe a ring: no nodes, a node without an id or tokens, an id listed twice, a token
    /// that is not a decimal u64 (digits only: no sign, spaces or hex), a token listed twice for one node, or R or
    /// V below 1.
    /// </exception>
    public static ClusterRing FromView(ClusterView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        if (view.Replicas < 1) throw Malformed($"replicas is {view.Replicas}; it must be at least 1.");
        if (view.VirtualNodes < 1) throw Malformed($"vnodes is {view.VirtualNodes}; it must be at least 1.");
        if (view.Nodes is not { Count: > 0 } nodes) throw Malformed("it lists no nodes.");
        var members = new KeyValuePair<string, Ring>[nodes.Count];
        var states = new Dictionary<string, NodeState>(nodes.Count, StringComparer.Ordinal);
        for (int n = 0; n < nodes.Count; n++)
        {
            ClusterNode? node = nodes[n];
            if (node is null) throw Malformed($"node {n} is null.");
            if (string.IsNullOrEmpty(node.Id)) throw Malformed($"node {n} has no id.");
            if (node.Tokens is not { Length: > 0 } strings) throw Malformed($"node '{node.Id}' lists no tokens.");
            var parsed = new ulong[strings.Length];
            for (int i = 0; i < strings.Length; i++)
            {
                if (!ulong.TryParse(strings[i], NumberStyles.None, CultureInfo.InvariantCulture, out parsed[i]))
                {
                    throw Malformed($"token {i} of node '{node.Id}' is \"{strings[i]}\", not a decimal u64 (0 … 18446744073709551615).");
                }
            }
            var ring = new Ring(parsed);
            if (ring.Count != parsed.Length) throw Malformed($"node '{node.Id}' lists a token twice.");
            members[n] = new(node.Id, ring);
            states[node.Id] = node.State;
        }
        List<KeyValuePair<ulong, string>>? standIns = null;
        if (view.StandIns is { } listed)
        {
            standIns = new(listed.Count);
            for (int i = 0; i < listed.Count; i++)
            {
                if (listed[i] is not { Node.Length: > 0 } standIn) throw Malformed($"stand-in {i} is null or names no node.");
                if (!ulong.TryParse(standIn.Token, NumberStyles.None, CultureInfo.InvariantCulture, out ulong token))
                    throw Malformed($"stand-in {i} has token \"{standIn.Token}\", not a decimal u64.");
                if (!states.ContainsKey(standIn.Node)) throw Malformed($"stand-in {i} names node '{standIn.Node}', which it does not list.");
                standIns.Add(new(token, standIn.Node));
            }
        }
        try
        {
            return new ClusterRing(view.Epoch, view.Replicas, view.VirtualNodes, members, states, standIns);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"The cluster document is malformed: {e.Message}", e);
        }
    }

    private static FormatException Malformed(string what) => new($"The cluster document is malformed: {what}");

    private static IEnumerable<KeyValuePair<string, Ring>> DefaultRings(IEnumerable<string> nodeIds, int virtualNodes)
    {
        ArgumentNullException.ThrowIfNull(nodeIds);
        ArgumentOutOfRangeException.ThrowIfLessThan(virtualNodes, 1);
        var rings = new List<KeyValuePair<string, Ring>>();
        foreach (string id in nodeIds)
        {
            if (string.IsNullOrEmpty(id)) throw new ArgumentException("A node id is null or empty.", nameof(nodeIds));
            rings.Add(new(id, Ring.ForNode(id, virtualNodes)));
        }
        return rings;
    }
}
