using FASTER.core;

namespace ParamDb.Storage;

/// <summary>
/// Per-operation input of the FASTER callbacks. For pending operations FASTER copies this struct to the heap, so
/// <see cref="Values"/> must stay pinned until <c>CompletePending(wait: true)</c> returns.
/// </summary>
internal unsafe struct RowInput
{
    /// <summary>The table the row belongs to: dim, layout, initializer, updater, row counter.</summary>
    public TableHandle Table;

    /// <summary>Push: the pushed row g, <c>Table.Dim</c> floats, pinned. Pull: unused.</summary>
    public float* Values;

    /// <summary>
    /// An import's set-rows: the RMW makes <see cref="Values"/> the row and resets its optimizer state as for a
    /// new row, instead of running the updater. An RMW rather than an Upsert so a new key is still counted.
    /// </summary>
    public bool Overwrite;

    /// <summary>
    /// A transferred record (<see cref="ParamStore.ApplyRecords"/>): the RMW makes the whole payload, values and
    /// optimizer state, these <c>PayloadBytes</c> bytes, whatever the row held. Null for every other RMW.
    /// </summary>
    public byte* Record;

    /// <summary>
    /// A read of the whole record (<see cref="ParamStore.ReadRecords"/>): the payload, values and optimizer state, then
    /// a float 1 that says the row exists; nothing for a row that does not. A pull reads the dim values alone.
    /// </summary>
    public bool WholeRecord;

    public RowInput(TableHandle table) => Table = table;
}

/// <summary>Per-operation output: where a pull writes the row's <c>dim</c> floats (pinned by the caller).</summary>
internal unsafe struct RowOutput
{
    public float* Destination;
}

/// <summary>
/// Value lengths for RMW. Without it FASTER sizes a new record from <see cref="SpanByteVarLenStruct"/>, and
/// <c>InitialUpdater</c> receives a 0-byte value (docs/design.md#facts-measured-on-the-development-machine). Rows of a table never change size, so both
/// lengths are the header plus <see cref="RowLayout.PayloadBytes"/>.
/// </summary>
internal sealed class RowLength : IVariableLengthStruct<SpanByte, RowInput>
{
    public static readonly RowLength Instance = new();

    public int GetInitialLength(ref RowInput input) => sizeof(int) + input.Table._layout.PayloadBytes;

    public int GetLength(ref SpanByte t, ref RowInput input) => sizeof(int) + input.Table._layout.PayloadBytes;
}

/// <summary>
/// The FASTER callbacks for rows, a struct passed generically so calls are not virtual. Split by operation:
/// RMW (push) in RowFunctions.Rmw.cs, Read (pull) in RowFunctions.Read.cs, Upsert/Delete (catalog record,
/// compaction copies) in RowFunctions.Write.cs.
/// </summary>
/// <remarks>
/// Concurrency: the store runs with <see cref="ConcurrencyControlMode.LockTable"/>, so FASTER holds an exclusive
/// transient lock on the key's hash bucket around <c>InPlaceUpdater</c> and a shared one around
/// <c>ConcurrentReader</c>: a pull never sees half a row. That alone did not keep two threads from creating one
/// row twice, so every write also holds the key's <see cref="RowLatches"/> stripe.
/// </remarks>
internal readonly partial struct RowFunctions : IFunctions<RowKey, SpanByte, RowInput, RowOutput, Empty>
{
    public void CheckpointCompletionCallback(int sessionID, string sessionName, CommitPoint commitPoint)
    {
    }

    public void DisposeDeserializedFromDisk(ref RowKey key, ref SpanByte value)
    {
    }
}
