using System.Runtime.InteropServices;
using FASTER.core;

namespace ParamDb.Storage;

/// <summary>Pull = Read: copy only the dim row values into the caller's pinned destination (a whole-record read: the payload).</summary>
internal readonly partial struct RowFunctions
{
    public bool SingleReader(ref RowKey key, ref RowInput input, ref SpanByte value, ref RowOutput dst, ref ReadInfo readInfo) =>
        CopyRow(ref input, ref value, ref dst);

    public bool ConcurrentReader(ref RowKey key, ref RowInput input, ref SpanByte value, ref RowOutput dst, ref ReadInfo readInfo) =>
        CopyRow(ref input, ref value, ref dst);

    /// <summary>
    /// A read that went to disk finished inside <c>CompletePending</c>. Found: <see cref="SingleReader"/> already
    /// copied the row. Not found: the row was never pushed, so write its initial value (without storing it).
    /// </summary>
    public unsafe void ReadCompletionCallback(ref RowKey key, ref RowInput input, ref RowOutput output, Empty ctx, Status status, RecordMetadata recordMetadata)
    {
        if (status.IsFaulted) throw new IOException($"Pull of row {key} failed reading the on-disk log.");
        if (status.NotFound && !input.WholeRecord) input.Table._initializer.Fill(key.Key, new Span<float>(output.Destination, input.Table.Dim));
    }

    private static unsafe bool CopyRow(ref RowInput input, ref SpanByte value, ref RowOutput dst)
    {
        if (input.WholeRecord)
        {
            ReadOnlySpan<byte> payload = value.AsReadOnlySpan();
            payload.CopyTo(new Span<byte>(dst.Destination, payload.Length));
            dst.Destination[payload.Length / sizeof(float)] = 1f;   // the row exists
            return true;
        }
        int dim = input.Table.Dim;
        MemoryMarshal.Cast<byte, float>(value.AsReadOnlySpan()).Slice(0, dim).CopyTo(new Span<float>(dst.Destination, dim));
        return true;
    }
}
