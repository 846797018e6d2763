namespace ParamDb.Storage.Export;

/// <summary>
/// Receives the keys of a <see cref="ParamStore.ScanKeys"/> chunk by chunk, on the scanning thread, one call at a
/// time. The span is a view of the scan's own pooled buffer, valid only during the call: copy what must outlive it.
/// </summary>
public interface IKeyChunkSink
{
    /// <summary>Takes the next chunk of keys, in log order (not sorted), possibly with keys seen before.</summary>
    /// <param name="keys">1 to 8,192 keys.</param>
    void Accept(ReadOnlySpan<ulong> keys);

    /// <summary>
    /// After the last chunk: keys handed out before whose rows were deleted later in the log (a dropped range,
    /// <see cref="ParamStore.DropRange"/>), to leave out. Not called when nothing was deleted.
    /// </summary>
    /// <param name="keys">Distinct keys, in no order; some may never have been handed out.</param>
    void Exclude(IReadOnlyCollection<ulong> keys);
}
