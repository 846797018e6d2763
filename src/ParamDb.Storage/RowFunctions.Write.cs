using FASTER.core;

namespace ParamDb.Storage;

/// <summary>
/// Upsert and Delete: used only for the catalog record (table id 0) and by log compaction, which copies live
/// records to the tail with <c>SingleWriter</c> (reason <see cref="WriteReason.Compaction"/>). Rows are never
/// deleted one by one: a deleted table's rows are dropped by compaction.
/// </summary>
internal readonly partial struct RowFunctions
{
    public bool SingleWriter(ref RowKey key, ref RowInput input, ref SpanByte src, ref SpanByte dst, ref RowOutput output, ref UpsertInfo upsertInfo, WriteReason reason)
    {
        src.CopyTo(ref dst);
        return true;
    }

    public void PostSingleWriter(ref RowKey key, ref RowInput input, ref SpanByte src, ref SpanByte dst, ref RowOutput output, ref UpsertInfo upsertInfo, WriteReason reason)
    {
    }

    /// <summary>In place only when the length is unchanged; otherwise FASTER appends a new record.</summary>
    public bool ConcurrentWriter(ref RowKey key, ref RowInput input, ref SpanByte src, ref SpanByte dst, ref RowOutput output, ref UpsertInfo upsertInfo)
    {
        if (dst.Length != src.Length) return false;
        src.CopyTo(ref dst);
        return true;
    }

    public void DisposeSingleWriter(ref RowKey key, ref RowInput input, ref SpanByte src, ref SpanByte dst, ref RowOutput output, ref UpsertInfo upsertInfo, WriteReason reason)
    {
    }

    /// <summary>A tombstone record has no room for a payload: leave the value alone.</summary>
    public bool SingleDeleter(ref RowKey key, ref SpanByte value, ref DeleteInfo deleteInfo) => true;

    public void PostSingleDeleter(ref RowKey key, ref DeleteInfo deleteInfo)
    {
    }

    public bool ConcurrentDeleter(ref RowKey key, ref SpanByte value, ref DeleteInfo deleteInfo) => true;

    public void DisposeSingleDeleter(ref RowKey key, ref SpanByte value, ref DeleteInfo deleteInfo)
    {
    }
}
