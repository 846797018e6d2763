using System.Diagnostics;
using System.Runtime.InteropServices;
using FASTER.core;

namespace ParamDb.Storage;

/// <summary>
/// Push = RMW: new rows start at the initializer's value, then every row gets the updater. An import's set-rows is an
/// RMW too (<see cref="RowInput.Overwrite"/>): the row becomes the given values, whatever it held; so is a
/// transferred record (<see cref="RowInput.Record"/>): the row becomes the given payload.
/// </summary>
internal readonly partial struct RowFunctions
{
    public bool NeedInitialUpdate(ref RowKey key, ref RowInput input, ref RowOutput output, ref RMWInfo rmwInfo) => true;

    /// <summary>A key with no record: w = init(k), optimizer state initial, then apply g.</summary>
    public unsafe bool InitialUpdater(ref RowKey key, ref RowInput input, ref SpanByte value, ref RowOutput output, ref RMWInfo rmwInfo)
    {
        TableHandle table = input.Table;
        Span<byte> payload = value.AsSpan();
        Debug.Assert(payload.Length == table._layout.PayloadBytes, "RowLength sizes every record of a table alike.");
        if (input.Record != null) return Replace(ref input, payload);
        if (input.Overwrite) return Overwrite(ref input, payload);
        table._initializer.Fill(key.Key, MemoryMarshal.Cast<byte, float>(payload).Slice(0, table.Dim));
        table._updater.InitState(payload, table.Dim);
        table._updater.Apply(payload, new ReadOnlySpan<float>(input.Values, table.Dim));
        return true;
    }

    /// <summary>Called once per key after its first record is in the log (not on CAS retries): the row count.</summary>
    public void PostInitialUpdater(ref RowKey key, ref RowInput input, ref SpanByte value, ref RowOutput output, ref RMWInfo rmwInfo)
    {
        input.Table.CountNewRow(key.Key);
    }

    /// <summary>The hot path: the record is in the mutable part of memory.</summary>
    public unsafe bool InPlaceUpdater(ref RowKey key, ref RowInput input, ref SpanByte value, ref RowOutput output, ref RMWInfo rmwInfo)
    {
        if (input.Record != null) return Replace(ref input, value.AsSpan());
        if (input.Overwrite) return Overwrite(ref input, value.AsSpan());
        input.Table._updater.Apply(value.AsSpan(), new ReadOnlySpan<float>(input.Values, input.Table.Dim));
        return true;
    }

    public bool NeedCopyUpdate(ref RowKey key, ref RowInput input, ref SpanByte oldValue, ref RowOutput output, ref RMWInfo rmwInfo) => true;

    /// <summary>The record is read-only (older memory, or read from disk): copy it to the tail, then update.</summary>
    public unsafe bool CopyUpdater(ref RowKey key, ref RowInput input, ref SpanByte oldValue, ref SpanByte newValue, ref RowOutput output, ref RMWInfo rmwInfo)
    {
        Span<byte> payload = newValue.AsSpan();
        if (input.Record != null) return Replace(ref input, payload);
        if (input.Overwrite) return Overwrite(ref input, payload);
        oldValue.AsReadOnlySpan().CopyTo(payload);
        input.Table._updater.Apply(payload, new ReadOnlySpan<float>(input.Values, input.Table.Dim));
        return true;
    }

    public void PostCopyUpdater(ref RowKey key, ref RowInput input, ref SpanByte oldValue, ref SpanByte newValue, ref RowOutput output, ref RMWInfo rmwInfo)
    {
    }

    public void DisposeCopyUpdater(ref RowKey key, ref RowInput input, ref SpanByte oldValue, ref SpanByte newValue, ref RowOutput output, ref RMWInfo rmwInfo)
    {
    }

    public void DisposeInitialUpdater(ref RowKey key, ref RowInput input, ref SpanByte value, ref RowOutput output, ref RMWInfo rmwInfo)
    {
    }

    /// <summary>An import's row: w = the given values, optimizer state as a new row's (a push after it steps like a first push).</summary>
    private static unsafe bool Overwrite(ref RowInput input, Span<byte> payload)
    {
        TableHandle table = input.Table;
        new ReadOnlySpan<float>(input.Values, table.Dim).CopyTo(MemoryMarshal.Cast<byte, float>(payload));
        table._updater.InitState(payload, table.Dim);
        return true;
    }

    /// <summary>A transferred record: the payload as the sending node stored it, values and optimizer state.</summary>
    private static unsafe bool Replace(ref RowInput input, Span<byte> payload)
    {
        new ReadOnlySpan<byte>(input.Record, payload.Length).CopyTo(payload);
        return true;
    }

    /// <summary>A pending RMW finished inside <c>CompletePending</c>; the update itself already ran.</summary>
    public void RMWCompletionCallback(ref RowKey key, ref RowInput input, ref RowOutput output, Empty ctx, Status status, RecordMetadata recordMetadata)
    {
        if (status.IsFaulted) throw new IOException($"Push of row {key} failed reading the on-disk log.");
    }
}
