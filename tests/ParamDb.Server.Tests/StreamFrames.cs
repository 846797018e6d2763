using System.Text;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;

namespace ParamDb.Server.Tests;

/// <summary>Request frames for the stream tests, written with the Protocol codec.</summary>
internal static class StreamFrames
{
    public static byte[] Frame(ulong id, StreamOp op, string table, byte[] block, uint worker = 0, int staleness = -1, ulong clock = 0, bool lz4 = false)
    {
        byte[] kv = lz4 && block.Length > 0 ? Wire.Lz4(block) : block;
        byte[] name = Encoding.UTF8.GetBytes(table);
        var frame = new byte[StreamRequestHeader.Size + StreamRequestHeader.Pad8(name.Length) + kv.Length];
        int offset = StreamRequestHeader.Write(frame, id, op, lz4 ? StreamFrameFlags.Lz4 : StreamFrameFlags.None, name, worker, staleness, clock, kv.Length);
        kv.CopyTo(frame, offset);
        return frame;
    }

    public static byte[] Push(ulong id, string table, ulong[] keys, float[] values, int dim, uint worker = 0, ulong clock = 0, bool lz4 = false) =>
        Frame(id, StreamOp.Push, table, Wire.PushBlock(keys, values, dim), worker, -1, clock, lz4);

    public static byte[] Pull(ulong id, string table, ulong[] keys, int staleness = -1, ulong clock = 0, uint worker = 0, bool lz4 = false) =>
        Frame(id, StreamOp.Pull, table, Wire.PullBlock(keys), worker, staleness, clock, lz4);

    public static byte[] PullRange(ulong id, string table, ulong first, int count)
    {
        var block = new byte[KvBlockWriter.SizeOf(true, count, 0, false)];
        KvBlockWriter.WriteRange(block, first, count, default, 0, withValues: false);
        return Frame(id, StreamOp.Pull, table, block);
    }

    public static byte[] Tick(ulong id, string table, uint worker, ulong clock) =>
        Frame(id, StreamOp.Tick, table, [], worker, -1, clock);

    public static byte[] Concat(params byte[][] parts)
    {
        var all = new byte[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(all, at);
            at += p.Length;
        }
        return all;
    }
}
