using System.Buffers.Binary;
using ParamDb.Protocol;

namespace ParamDb.Storage.Versions;

/// <summary>
/// The stored form of the ring tokens a store keeps vector clocks for (<see cref="ParamStore.Ranges"/>): the value
/// of the system record <see cref="RowKey.RangesKey"/> and of a ranges write-ahead log record. Absent until the
/// ranges are first changed; then it, not <see cref="StoreOptions.Ring"/>, says what they are after a restart.
/// <code>
/// offset  size        field (little-endian)
/// 0       4           u32 tokens T, at least 1
/// 4       8·T         u64 tokens, strictly ascending
/// 4+8T    ⌈T/8⌉       served: bit i (byte i/8, bit i%8) set when range i is served
/// </code>
/// </summary>
internal static class RangesRecord
{
    public static byte[] Write(Ring ring, RangeShape shape)
    {
        ReadOnlySpan<ulong> tokens = ring.Tokens;
        int t = tokens.Length;
        var bytes = new byte[4 + 8 * t + (t + 7) / 8];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)t);
        for (int i = 0; i < t; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(4 + 8 * i), tokens[i]);
            if (shape.Serves(i)) bytes[4 + 8 * t + i / 8] |= (byte)(1 << (i % 8));
        }
        return bytes;
    }

    public static bool TryRead(ReadOnlySpan<byte> bytes, out Ring? ring, out RangeShape? shape)
    {
        ring = null;
        shape = null;
        if (bytes.Length < 4) return false;
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        if (count == 0 || count > int.MaxValue / 16 || bytes.Length != 4 + 8L * count + (count + 7) / 8) return false;
        var tokens = new ulong[count];
        var served = new bool[count];
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(4 + 8 * i)..]);
            if (i > 0 && tokens[i] <= tokens[i - 1]) return false;
            served[i] = (bytes[(int)(4 + 8 * count) + i / 8] & (1 << (i % 8))) != 0;
        }
        ring = new Ring(tokens);
        shape = new RangeShape(tokens.Length, served);
        return true;
    }
}
