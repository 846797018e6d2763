using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ParamDb.Protocol;

/// <summary>Flag bits of the KV block header.</summary>
[Flags]
public enum KvFlags : ushort
{
    /// <summary>Explicit keys, no values: a pull request.</summary>
    None = 0,
    /// <summary>The keys section is one u64 <c>first</c>; rows are first, first+1, …, first+count-1.</summary>
    Range = 1,
    /// <summary>A values section of count × dim float32 follows the keys.</summary>
    Values = 2,
}

/// <summary>What a parse expects of the VALUES flag.</summary>
public enum KvExpect
{
    /// <summary>A push: VALUES must be set.</summary>
    Values,
    /// <summary>A pull request: VALUES must be clear.</summary>
    NoValues,
    /// <summary>Either (a reply read by a client, a tool).</summary>
    Any,
}

/// <summary>
/// A parsed, validated view of a KV block (binary wire format, version 1). It holds offsets only;
/// the bytes stay in the caller's buffer, so every accessor takes that buffer again.
/// <code>
/// offset  size  field
/// 0       4     magic   = ASCII "PDB1"
/// 4       2     version = 1
/// 6       2     flags   bit0 RANGE, bit1 VALUES, other bits 0
/// 8       4     dim     floats per row (a pull request may give 0)
/// 12      4     reserved, 0
/// 16      8     count   number of rows
/// 24      …     keys    RANGE ? one u64 first : count × u64, strictly ascending
/// …       …     values  VALUES ? count × dim × float32, row-major
/// </code>
/// All integers are little-endian and every section starts 8-byte aligned, so NumPy reads it in place.
/// </summary>
public readonly struct KvBlock
{
    /// <summary>Size of the fixed header, in bytes.</summary>
    public const int HeaderSize = 24;

    /// <summary>The only version this code speaks.</summary>
    public const ushort CurrentVersion = 1;

    /// <summary>"PDB1" read as a little-endian u32.</summary>
    public const uint Magic = 0x31424450;

    /// <summary>Header flags.</summary>
    public KvFlags Flags { get; }

    /// <summary>Floats per row as written in the header.</summary>
    public int Dim { get; }

    /// <summary>Number of rows.</summary>
    public int Count { get; }

    /// <summary>First key of a RANGE block; 0 otherwise.</summary>
    public ulong First { get; }

    /// <summary>Total length of the block in bytes.</summary>
    public long Length { get; }

    /// <summary>True when the keys are the dense range <see cref="First"/> … First+Count-1.</summary>
    public bool IsRange => (Flags & KvFlags.Range) != 0;

    /// <summary>True when a values section follows the keys.</summary>
    public bool HasValues => (Flags & KvFlags.Values) != 0;

    /// <summary>Offset of the values section.</summary>
    public int ValuesOffset => HeaderSize + (IsRange ? 8 : Count * 8);

    private KvBlock(KvFlags flags, int dim, int count, ulong first, long length)
    {
        Flags = flags;
        Dim = dim;
        Count = count;
        First = first;
        Length = length;
    }

    /// <summary>The explicit keys (empty for a RANGE block: use <see cref="KeyAt"/>).</summary>
    public ReadOnlySpan<ulong> Keys(ReadOnlySpan<byte> block) =>
        IsRange ? default : MemoryMarshal.Cast<byte, ulong>(block.Slice(HeaderSize, Count * 8));

    /// <summary>The key of row <paramref name="row"/>, for either layout.</summary>
    public ulong KeyAt(ReadOnlySpan<byte> block, int row) =>
        IsRange ? First + (ulong)row : BinaryPrimitives.ReadUInt64LittleEndian(block.Slice(HeaderSize + row * 8, 8));

    /// <summary>The row-major values (count × dim floats); empty without VALUES.</summary>
    public ReadOnlySpan<float> Values(ReadOnlySpan<byte> block) =>
        HasValues ? MemoryMarshal.Cast<byte, float>(block.Slice(ValuesOffset, checked(Count * Dim * 4))) : default;

    /// <summary>The largest key in the block (0 when empty).</summary>
    public ulong LastKey(ReadOnlySpan<byte> block) => Count == 0 ? 0 : KeyAt(block, Count - 1);

    /// <summary>
    /// Parses and validates <paramref name="block"/>: header, flags, exact length, strictly ascending keys.
    /// Never throws for malformed input; the reason comes back in <paramref name="error"/>.
    /// </summary>
    /// <param name="block">The whole body.</param>
    /// <param name="expect">Whether VALUES must be present.</param>
    /// <param name="maxKeys">Largest accepted count.</param>
    /// <param name="result">The parsed view when true.</param>
    /// <param name="error">The rejection when false.</param>
    public static bool TryParse(ReadOnlySpan<byte> block, KvExpect expect, int maxKeys, out KvBlock result, out ProtocolError error)
    {
        result = default;
        if (!TryReadHeader(block, out var flags, out uint dim, out ulong count, out error)) return false;
        bool hasValues = (flags & KvFlags.Values) != 0;
        if (expect == KvExpect.Values && !hasValues)
            return Fail(out error, 400, ProblemCodes.BadFlags, "A push block needs the VALUES flag (bit1) and a values section.");
        if (expect == KvExpect.NoValues && hasValues)
            return Fail(out error, 400, ProblemCodes.BadFlags, "A pull request block must not carry VALUES (bit1).");
        if (count > (ulong)maxKeys)
            return Fail(out error, 413, ProblemCodes.TooManyKeys, $"The block has {count} rows; this server accepts at most {maxKeys} per request.");
        bool isRange = (flags & KvFlags.Range) != 0;
        // count ≤ maxKeys ≤ int.MaxValue and dim < 2^32, so these products fit in UInt128 and the check is exact.
        UInt128 expected = (UInt128)HeaderSize + (isRange ? 8u : (UInt128)count * 8) + (hasValues ? (UInt128)count * dim * 4 : 0);
        if (expected > int.MaxValue)
            return Fail(out error, 413, ProblemCodes.TooManyKeys, $"{count} rows × dim {dim} do not fit in one request.");
        if ((ulong)block.Length < (ulong)expected)
            return Fail(out error, 400, ProblemCodes.Truncated, $"The header promises {expected} bytes ({count} rows, dim {dim}); the body has {block.Length}.");
        if ((ulong)block.Length > (ulong)expected)
            return Fail(out error, 400, ProblemCodes.LengthMismatch, $"The header promises {expected} bytes ({count} rows, dim {dim}); the body has {block.Length}: {block.Length - (long)expected} extra.");

        int n = (int)count;
        ulong first = 0;
        if (isRange)
        {
            first = BinaryPrimitives.ReadUInt64LittleEndian(block[HeaderSize..]);
            if (n > 0 && first > ulong.MaxValue - (ulong)(n - 1))
                return Fail(out error, 400, ProblemCodes.KeyOutOfRange, $"The range {first} + {n} rows runs past 2^64-1.");
        }
        else if (!CheckAscending(MemoryMarshal.Cast<byte, ulong>(block.Slice(HeaderSize, n * 8)), out error))
        {
            return false;
        }
        result = new KvBlock(flags, (int)Math.Min(dim, int.MaxValue), n, first, (long)expected);
        error = default;
        return true;
    }

    /// <summary>
    /// Reads and checks the 24-byte header alone: length, magic, version, known flag bits, reserved field. The
    /// one place these rules live; <see cref="TryParse"/> adds the body checks, and a reader that streams the
    /// body (the .NET client) adds its own expectations.
    /// </summary>
    /// <param name="block">At least the header.</param>
    /// <param name="flags">The flags when true.</param>
    /// <param name="dim">Floats per row as written.</param>
    /// <param name="count">Rows as written (not yet checked against any limit).</param>
    /// <param name="error">The rejection when false.</param>
    public static bool TryReadHeader(ReadOnlySpan<byte> block, out KvFlags flags, out uint dim, out ulong count, out ProtocolError error)
    {
        flags = default;
        dim = 0;
        count = 0;
        if (block.Length < HeaderSize)
            return Fail(out error, 400, ProblemCodes.Truncated, $"A KV block needs at least {HeaderSize} header bytes; the body has {block.Length}.");
        if (BinaryPrimitives.ReadUInt32LittleEndian(block) != Magic)
            return Fail(out error, 400, ProblemCodes.BadMagic, "The body does not start with the magic \"PDB1\"; is it a KV block?");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(block[4..]);
        if (version != CurrentVersion)
            return Fail(out error, 400, ProblemCodes.UnsupportedVersion, $"KV block version {version} is not supported; this server speaks version {CurrentVersion}.");
        ushort rawFlags = BinaryPrimitives.ReadUInt16LittleEndian(block[6..]);
        if ((rawFlags & ~(ushort)(KvFlags.Range | KvFlags.Values)) != 0)
            return Fail(out error, 400, ProblemCodes.BadFlags, $"Unknown flag bits 0x{rawFlags & ~3:x4}; only bit0 RANGE and bit1 VALUES are defined.");
        if (BinaryPrimitives.ReadUInt32LittleEndian(block[12..]) != 0)
            return Fail(out error, 400, ProblemCodes.BadFlags, "The reserved header field (offset 12) must be 0.");
        flags = (KvFlags)rawFlags;
        dim = BinaryPrimitives.ReadUInt32LittleEndian(block[8..]);
        count = BinaryPrimitives.ReadUInt64LittleEndian(block[16..]);
        error = default;
        return true;
    }

    /// <summary>Checks that <paramref name="keys"/> are strictly ascending, naming the first offender.</summary>
    public static bool CheckAscending(ReadOnlySpan<ulong> keys, out ProtocolError error) =>
        CheckAscending(keys, firstRow: 0, hasPrevious: false, previous: 0, out error);

    /// <summary>
    /// Checks one chunk of a longer run of keys (as the wire holds them, little-endian): strictly ascending, and
    /// above <paramref name="previous"/>, the run's last key so far, when <paramref name="hasPrevious"/>. Details
    /// count rows from the start of the run.
    /// </summary>
    internal static bool CheckAscending(ReadOnlySpan<ulong> keys, long firstRow, bool hasPrevious, ulong previous, out ProtocolError error)
    {
        for (int i = 0; i < keys.Length; i++)
        {
            ulong key = BitConverter.IsLittleEndian ? keys[i] : BinaryPrimitives.ReverseEndianness(keys[i]);
            if (hasPrevious && key <= previous)
            {
                long row = firstRow + i;
                return key == previous
                    ? Fail(out error, 400, ProblemCodes.DuplicateKeys, $"Key {key} appears twice (rows {row - 1} and {row}); keys must be unique.")
                    : Fail(out error, 400, ProblemCodes.UnsortedKeys, $"Keys must be strictly ascending: row {row} has key {key} after {previous}.");
            }
            hasPrevious = true;
            previous = key;
        }
        error = default;
        return true;
    }

    private static bool Fail(out ProtocolError error, int status, string code, string detail)
    {
        error = new ProtocolError(status, code, detail);
        return false;
    }
}
