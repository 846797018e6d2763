global using RowSession = FASTER.core.ClientSession<ParamDb.Storage.RowKey, FASTER.core.SpanByte, ParamDb.Storage.RowInput, ParamDb.Storage.RowOutput, FASTER.core.Empty, ParamDb.Storage.RowFunctions>;
using System.Collections.Concurrent;
using FASTER.core;

namespace ParamDb.Storage;

/// <summary>
/// FASTER sessions for batch calls. A FASTER session is not thread-safe: one session is used by one thread at a
/// time and never shared. A caller rents one for a whole batch (a push or pull of many keys) and returns it
/// after its pending operations are complete, so the pool holds at most as many sessions as there were
/// concurrent batches (each costs a few KiB).
/// </summary>
internal sealed class SessionPool : IDisposable
{
    private readonly FasterKV<RowKey, SpanByte> _store;
    private readonly ConcurrentBag<RowSession> _idle = new();
    private readonly SessionVariableLengthStructSettings<SpanByte, RowInput> _lengths = new() { valueLength = RowLength.Instance };
    private volatile bool _disposed;

    public SessionPool(FasterKV<RowKey, SpanByte> store) => _store = store;

    /// <summary>A session for the calling thread's exclusive use until <see cref="Return"/>.</summary>
    public RowSession Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_idle.TryTake(out RowSession? session)) return session;
        // One new session per concurrent batch; never shared between threads (see the class comment).
        return _store.For(new RowFunctions()).NewSession<RowFunctions>(sessionVariableLengthStructSettings: _lengths);
    }

    /// <summary>Gives a session back; it must have no pending operations.</summary>
    public void Return(RowSession session)
    {
        if (_disposed) session.Dispose();
        else _idle.Add(session);
    }

    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryTake(out RowSession? session)) session.Dispose();
    }
}
