using System.Runtime.CompilerServices;
using System.Text;

namespace ParamDb.Protocol;

/// <summary>
/// The consistent-hash ring of docs/design.md. A key sits at <see cref="Position"/>: a hash of its table's name
/// and its block (<c>key &gt;&gt; 12</c>), so a dense run of 4,096 keys stays in one place. Each node holds V
/// tokens; the range (arc) a position falls in is named by the first token at or after it, clockwise.
/// A range is the unit of vector clocks, ownership, replication and migration; on a single node all its V
/// ranges are local, and they move with their clocks when nodes join.
/// </summary>
public sealed class Ring
{
    /// <summary>Virtual nodes (tokens) per node by default.</summary>
    public const int DefaultVirtualNodes = 64;

    /// <summary>Bits of a key that select a row inside its block: blocks are 2^12 consecutive keys.</summary>
    public const int BlockBits = 12;

    private readonly ulong[] _tokens;

    /// <summary>A ring of the given tokens (any order; duplicates are removed).</summary>
    public Ring(IEnumerable<ulong> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var sorted = new SortedSet<ulong>(tokens);
        if (sorted.Count == 0) throw new ArgumentException("A ring needs at least one token.", nameof(tokens));
        _tokens = [.. sorted];
    }

    /// <summary>The tokens, ascending: range i is the arc (tokens[i-1], tokens[i]] (range 0 wraps around).</summary>
    public ReadOnlySpan<ulong> Tokens => _tokens;

    /// <summary>Number of ranges.</summary>
    public int Count => _tokens.Length;

    /// <summary>
    /// The ring of one node named <paramref name="node"/>: tokens are a hash of (name, i), so the same node gets
    /// the same ranges on every start.
    /// </summary>
    public static Ring ForNode(string node, int virtualNodes = DefaultVirtualNodes)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        ArgumentOutOfRangeException.ThrowIfLessThan(virtualNodes, 1);
        ulong seed = NameHash(node);
        var tokens = new ulong[virtualNodes];
        for (int i = 0; i < virtualNodes; i++) tokens[i] = Mix64(seed + (ulong)(i + 1) * Golden);
        return new Ring(tokens);
    }

    /// <summary>The hash of a table name that <see cref="Position"/> takes; compute it once per table.</summary>
    public static ulong NameHash(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        // FNV-1a over the UTF-8 bytes, then mixed: stable across processes and languages (string.GetHashCode is not).
        ulong h = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        return Mix64(h);
    }

    /// <summary>The ring position of <paramref name="key"/> in the table whose <see cref="NameHash"/> is <paramref name="tableHash"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Position(ulong tableHash, ulong key) => Mix64(tableHash ^ (key >> BlockBits) * Golden);

    /// <summary>The index of the range holding <paramref name="position"/>: the first token ≥ it, wrapping to 0.</summary>
    public int RangeOf(ulong position)
    {
        int i = Array.BinarySearch(_tokens, position);
        if (i < 0) i = ~i;
        return i == _tokens.Length ? 0 : i;
    }

    /// <summary>The index of the range holding <paramref name="key"/> of a table.</summary>
    public int RangeOf(ulong tableHash, ulong key) => RangeOf(Position(tableHash, key));

    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>SplitMix64's finalizer: a bijection on 64 bits with full avalanche.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix64(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
