using System.Buffers.Binary;
using ParamDb.Protocol;

namespace ParamDb.Storage.Versions;

/// <summary>
/// The stored form of the ring tokens a store keeps vector clocks for (<see cref="ParamStore.Ranges"/>): the value
/// of the system record <see cref="RowKey.RangesKey"/> and of a ranges write-ahead log record. Absent until the
/// ranges are first changed; then it, not <see cref="StoreOptions.Ring"/>, says what they are after a restart.
/// <code>
/// offset  size    field (little-endian)
/// 0       4       u32 tokens T, at least 1
/// 4       8·T     u64 tokens, strictly ascending
/// </code>
/// </summary>
internal static class RangesRecord
{
    public static byte[] Write(Ring ring)
    {
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        var bytes = new byte[4 + 8 * tokens.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)tokens.Length);
        for (int i = 0; i < tokens.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(4 + 8 * i), tokens[i]);
        return bytes;
    }

    public static bool TryRead(ReadOnlySpan<byte> bytes, out Ring? ring)
    {
        ring = null;
        if (bytes.Length < 4) return false;
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        if (count == 0 || bytes.Length != 4 + 8L * count) return false;
        var tokens = new ulong[count];
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(4 + 8 * i)..]);
            if (i > 0 && tokens[i] <= tokens[i - 1]) return false;
        }
        ring = new Ring(tokens);
        return true;
    }
}
