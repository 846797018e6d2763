using System.Buffers;

namespace ParamDb.Storage.Transfer;

/// <summary>
/// Whole-record transfer (docs/replication.md): a range's rows with their optimizer state and its vector clock,
/// read on one node and written on another, and ranges dropped. <see cref="ParamStore"/> implements it; the peer
/// endpoints and (later) replication use it.
/// </summary>
/// <remarks>Concurrency: every member may be called while pushes and pulls run.</remarks>
public interface IRangeTransfer
{
    /// <summary>Whether the store serves the range that ends at <paramref name="token"/> (it is primary for it) rather than holding a copy.</summary>
    bool Serves(ulong token);

    /// <summary>Starts a copy of one range (see <see cref="ParamStore.CopyRange"/>).</summary>
    RangeCopy CopyRange(TableHandle table, ulong token, int maxBatchBytes = ParamStore.TransferBatchBytes);

    /// <summary>Writes record batches, one or several back to back, as one log record (see <see cref="ParamStore.ApplyRecords"/>).</summary>
    Task ApplyRecords(TableHandle table, ReadOnlySpan<byte> batches);

    /// <summary>Reads chosen rows of one range as a record batch (see <see cref="ParamStore.ReadRecords"/>).</summary>
    int ReadRecords(TableHandle table, ulong token, ReadOnlySpan<ulong> keys, IBufferWriter<byte> destination);

    /// <summary>Deletes one range's rows and resets its clock (see <see cref="ParamStore.DropRange"/>).</summary>
    (long Rows, Task Durable) DropRange(TableHandle table, ulong token);

    /// <summary>Deletes several ranges' rows and resets their clocks in one pass (see <see cref="ParamStore.DropRanges"/>).</summary>
    (long Rows, Task Durable) DropRanges(TableHandle table, IReadOnlyList<ulong> tokens);
}
