using System.Buffers.Binary;

namespace ParamDb.Protocol.Safetensors;

/// <summary>
/// Checks the keys section of an import as it streams in, chunk by chunk: strictly ascending (sorted and
/// unique) across chunk boundaries, and below the table's <c>maxKey</c> when it has one. It remembers the
/// last key and the count, so an import holds one chunk at a time whatever n is.
/// <code>
/// var checker = new SafetensorsKeyChecker(schema.MaxKey);
/// while (more keys) if (!checker.TryAccept(MemoryMarshal.Cast&lt;byte, ulong&gt;(chunk), out var error)) return error;
/// // then checker.Count == header.Count
/// </code>
/// A mutable struct: keep it in a local or a non-readonly field, or each call checks a copy.
/// </summary>
/// <param name="maxKey">The exclusive upper bound of keys (<see cref="TableSchema.MaxKey"/>), or null for none.</param>
public struct SafetensorsKeyChecker(ulong? maxKey)
{
    private readonly ulong _limit = maxKey ?? ulong.MaxValue;
    private readonly bool _bounded = maxKey is not null;

    /// <summary>Keys accepted so far; the row index of the next key.</summary>
    public long Count { get; private set; }

    /// <summary>The last key accepted (0 before the first).</summary>
    public ulong LastKey { get; private set; }

    /// <summary>
    /// Checks the next <paramref name="chunk"/> of keys against each other and against the chunks before it.
    /// On false the checker is left as it was after the last good chunk, and the detail names the offending row
    /// (counted from the start of the section).
    /// </summary>
    /// <param name="chunk">Keys as the file holds them, little-endian (e.g. <c>MemoryMarshal.Cast&lt;byte, ulong&gt;</c> of the bytes); may be empty.</param>
    /// <param name="error"><c>unsorted_keys</c>, <c>duplicate_keys</c> or <c>key_out_of_range</c> when false.</param>
    public bool TryAccept(ReadOnlySpan<ulong> chunk, out ProtocolError error)
    {
        if (chunk.IsEmpty)
        {
            error = default;
            return true;
        }
        if (!KvBlock.CheckAscending(chunk, Count, hasPrevious: Count > 0, LastKey, out error)) return false;
        ulong previous = Read(chunk[^1]);
        // Ascending, so only the chunk's last key can be the first to reach the bound; look for the first
        // offender only when it does.
        if (_bounded && previous >= _limit)
        {
            int i = 0;
            while (Read(chunk[i]) < _limit) i++;
            return Fail(out error, ProblemCodes.KeyOutOfRange, $"Row {Count + i} has key {Read(chunk[i])}; the table's maxKey is {_limit}, so keys must be below it.");
        }
        Count += chunk.Length;
        LastKey = previous;
        error = default;
        return true;
    }

    private static ulong Read(ulong raw) => BitConverter.IsLittleEndian ? raw : BinaryPrimitives.ReverseEndianness(raw);

    private static bool Fail(out ProtocolError error, string code, string detail)
    {
        error = new ProtocolError(400, code, detail);
        return false;
    }
}
