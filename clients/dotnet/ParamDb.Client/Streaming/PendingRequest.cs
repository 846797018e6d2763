using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;
using ParamDb.Protocol.Stream;
using ParamDb.Client.Internal;

namespace ParamDb.Client.Streaming;

/// <summary>Where a request is in its life. Every change but Reading → Done happens under the stream's lock.</summary>
internal enum RequestState : byte
{
    /// <summary>Being submitted; a cancellation now is noted and honoured by the submit.</summary>
    New,
    /// <summary>In the send queue, not yet taken by a writer.</summary>
    Queued,
    /// <summary>Taken by the writer, which is reading the caller's memory into the stream.</summary>
    Writing,
    /// <summary>Written; in the on-wire table waiting for its reply.</summary>
    Sent,
    /// <summary>Taken by the reader, which is reading its reply.</summary>
    Reading,
    /// <summary>Completed (result, error or cancellation).</summary>
    Done,
}

/// <summary>A reply as the reader hands it to the awaiting call.</summary>
/// <param name="Rows">Push/tick: rows in the request.</param>
/// <param name="Applied">Push/tick: rows applied.</param>
/// <param name="Clock">Pull: minimum clock of the ranges read.</param>
/// <param name="Values">Pull without a destination: the new array of rows.</param>
internal readonly record struct StreamReply(long Rows, long Applied, ulong Clock, float[]? Values);

/// <summary>
/// One request from call to reply: what to send (a view of the caller's keys and values, never a copy), where a
/// pull's rows go, and the completion the call awaits. Pooled: an instance goes back to the pool only when every
/// holder has let go — the call (after reading its result), the send queue, and a writer that is reading the
/// caller's memory — so a recycled instance is never written from or completed twice.
/// </summary>
internal sealed class PendingRequest : IValueTaskSource<StreamReply>
{
    private static readonly ConcurrentQueue<PendingRequest> Pool = new();
    private static int _pooled;
    private const int MaxPooled = 1024;

    private ManualResetValueTaskSourceCore<StreamReply> _core = new() { RunContinuationsAsynchronously = true };
    private int _references;

    // What to send.
    public ParamDbStream? Owner;
    public ulong Id;
    public StreamOp Op;
    public string Table = "";
    public ClockStamp Stamp;
    public int Staleness = -1;
    public ulong RingEpoch;
    public bool Lz4;
    public bool Range;
    public ulong First;
    public int Count;
    public int Dim;
    public ReadOnlyMemory<ulong> Keys;
    public ReadOnlyMemory<float> Values;

    // Where a pull's reply goes: Destination when Dim > 0, else a new array of the reply's dim.
    public Memory<float> Destination;

    // Progress; guarded by the stream's lock.
    public RequestState State = RequestState.New;
    public bool CancelRequested;
    public int Attempts;
    public CancellationToken Token;
    public CancellationTokenRegistration Registration;

    private PendingRequest()
    {
    }

    /// <summary>The token that matches the awaiting call's <see cref="ValueTask{T}"/>.</summary>
    public short Version => _core.Version;

    /// <summary>A clean instance held once, by the call.</summary>
    public static PendingRequest Rent()
    {
        if (Pool.TryDequeue(out var request)) Interlocked.Decrement(ref _pooled);
        else request = new PendingRequest();
        request._references = 1;
        return request;
    }

    /// <summary>Another holder (the send queue, a writer) keeps the instance alive.</summary>
    public void AddReference() => Interlocked.Increment(ref _references);

    /// <summary>A holder lets go; the last one clears the instance and pools it.</summary>
    public void Release()
    {
        int left = Interlocked.Decrement(ref _references);
        if (left > 0) return;
        if (left < 0) throw new InvalidOperationException("A stream request was released more often than it was held.");
        // Every field, not only the references: a recycled request must not inherit, say, Range and First from
        // a range push and write the next caller's explicit keys as a range.
        Owner = null;
        Id = 0;
        Op = default;
        Table = "";
        Stamp = default;
        Staleness = -1;
        RingEpoch = 0;
        Lz4 = false;
        Range = false;
        First = 0;
        Count = 0;
        Dim = 0;
        Keys = default;
        Values = default;
        Destination = default;
        State = RequestState.New;
        CancelRequested = false;
        Attempts = 0;
        Token = default;
        Registration = default;
        _core.Reset();
        if (Interlocked.Increment(ref _pooled) <= MaxPooled) Pool.Enqueue(this);
        else Interlocked.Decrement(ref _pooled);
    }

    /// <summary>
    /// Completes the call with its reply. Only the one that moved the request to <see cref="RequestState.Done"/>
    /// calls this, once, and must not touch the instance afterwards (the call may recycle it at once).
    /// </summary>
    public void Complete(StreamReply reply)
    {
        // Dispose waits for a cancellation callback already running on another thread, so no callback runs
        // against this instance once it is recycled; a callback completing the request itself does not wait.
        Registration.Dispose();
        _core.SetResult(reply);
    }

    /// <summary>Fails the call; the same rules as <see cref="Complete"/>.</summary>
    public void Fail(Exception error)
    {
        Registration.Dispose();
        _core.SetException(error);
    }

    /// <inheritdoc />
    public StreamReply GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Release();
        }
    }

    /// <inheritdoc />
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    /// <inheritdoc />
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
