using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using static ParamDb.Client.Internal.BatchChecks;
using ParamDb.Client.Streaming;

namespace ParamDb.Client;

// Building requests from a call's arguments (checked before anything is queued) and waiting for their replies.
public sealed partial class ParamDbStream
{
    private PendingRequest NewRequest(StreamOp op, string table, ClockStamp stamp, in ParamDbCallOptions options)
    {
        PendingRequest request = PendingRequest.Rent();
        request.Op = op;
        request.Table = table;
        request.Stamp = stamp;
        request.Staleness = op == StreamOp.Pull ? (options.Consistency ?? Consistency.Eventual).Staleness : -1;
        request.Lz4 = (options.Compression ?? _options.Compression) == ParamDbCompression.Lz4;
        request.RingEpoch = options.RingEpoch ?? 0;
        return request;
    }

    private PendingRequest NewPush(string table, ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values, ClockStamp stamp, in ParamDbCallOptions options)
    {
        CheckName(table);
        CheckAscending(keys.Span);
        int dim = RowWidth(keys.Length, values.Length, nameof(values));
        BlockSize(range: false, keys.Length, dim, values: true);
        PendingRequest request = NewRequest(StreamOp.Push, table, stamp, options);
        request.Keys = keys;
        request.Count = keys.Length;
        request.Dim = dim;
        request.Values = values;
        return request;
    }

    /// <summary>A pull of explicit keys; <paramref name="allocate"/>: into a new array at the table's dim (block dim 0).</summary>
    private PendingRequest NewPull(string table, ReadOnlyMemory<ulong> keys, Memory<float> destination, bool allocate, ClockStamp stamp, in ParamDbCallOptions options)
    {
        CheckName(table);
        CheckAscending(keys.Span);
        int dim = allocate ? 0 : RowWidth(keys.Length, destination.Length, nameof(destination));
        BlockSize(range: false, keys.Length, 0, values: false);
        PendingRequest request = NewRequest(StreamOp.Pull, table, stamp, options);
        request.Keys = keys;
        request.Count = keys.Length;
        request.Dim = dim;
        request.Destination = destination;
        return request;
    }

    private PendingRequest NewPullRange(string table, ulong first, int count, int dim, ClockStamp stamp, in ParamDbCallOptions options)
    {
        CheckName(table);
        CheckRange(first, count);
        PendingRequest request = NewRequest(StreamOp.Pull, table, stamp, options);
        request.Range = true;
        request.First = first;
        request.Count = count;
        request.Dim = dim;
        return request;
    }

    /// <summary>Queues the request and waits for its reply; a passed <paramref name="timeout"/> throws <see cref="TimeoutException"/>.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<StreamReply> SendAsync(PendingRequest request, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        using var deadline = Deadline(timeout, cancellationToken, out CancellationToken token);
        short version = request.Version;
        Submit(request, token); // synchronous: call order is send order
        try
        {
            return await new ValueTask<StreamReply>(request, version).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw TimedOut(e, deadline, cancellationToken, timeout);
        }
    }

    private static CancellationTokenSource? Deadline(TimeSpan? timeout, CancellationToken cancellationToken, out CancellationToken token)
    {
        token = cancellationToken;
        if (timeout is not { } limit) return null;
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        token = deadline.Token;
        return deadline;
    }

    /// <summary>The exception to throw: a cancellation caused by the call's own deadline becomes <see cref="TimeoutException"/>.</summary>
    private static Exception TimedOut(Exception error, CancellationTokenSource? deadline, CancellationToken caller, TimeSpan? timeout)
    {
        if (error is OperationCanceledException && deadline is { IsCancellationRequested: true } && !caller.IsCancellationRequested)
            return new TimeoutException($"No reply within the call's timeout of {timeout!.Value.TotalMilliseconds:0} ms; if it was a push, it may or may not have been applied.", error);
        ExceptionDispatchInfo.Capture(error).Throw();
        return error; // not reached
    }
}
