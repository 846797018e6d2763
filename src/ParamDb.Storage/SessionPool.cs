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
    private readonly FasterKV<RowKey, SpanByte> store;
    private readonly ConcurrentBag<RowSession> idle = new();
    private readonly SessionVariableLengthStructSettings<SpanByte, RowInput> lengths = new() { valueLength = RowLength.Instance };
    private volatile bool disposed;

    public SessionPool(FasterKV<RowKey, SpanByte> store) => this.store = store;

    /// <summary>A session for the calling thread's exclusive use until <see cref="Return"/>.</summary>
    public RowSession Rent()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (idle.TryTake(out RowSession? session)) return session;
        // One new session per concurrent batch; never shared between threads (see the class comment).
        return store.For(new RowFunctions()).NewSession<RowFunctions>(sessionVariableLengthStructSettings: lengths);
    }

    /// <summary>Gives a session back; it must have no pending operations.</summary>
    public void Return(RowSession session)
    {
        if (disposed) session.Dispose();
        else idle.Add(session);
    }

    public void Dispose()
    {
        disposed = true;
        while (idle.TryTake(out RowSession? session)) session.Dispose();
    }
}
