using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Server.Data;
using ParamDb.Server.Http;
using ParamDb.Storage;

namespace ParamDb.Server.Streaming;

/// <summary>Push, tick and pull frames, through the node's data plane like the REST endpoints.</summary>
internal sealed partial class StreamSession
{
    /// <summary>Answers one well-formed frame; owns and returns its payload unless a parked pull takes it.</summary>
    private async ValueTask DispatchAsync(IncomingFrame frame)
    {
        StreamRequestHeader h = frame.Header;
        PooledBuffer? payload = frame.Payload;
        try
        {
            if (_host.Node is not { } node)
            {
                await ReplyErrorAsync(h.RequestId, DataErrors.Unavailable, isReader: true);
                return;
            }
            var (table, error) = await node.ResolveAsync(frame.Table!, _stop.Token);
            if (table is null)
            {
                await ReplyErrorAsync(h.RequestId, error, isReader: true);
                return;
            }
            if (h.Op == StreamOp.Pull)
            {
                if (await PullAsync(h, node, table, payload!)) payload = null; // parked: the wait owns it now
                return;
            }
            var options = new PushOptions(new WorkerStamp(h.Worker, h.Clock), h.RingEpoch);
            PushReply reply = h.Op == StreamOp.Tick
                ? await node.Data.TickAsync(table, options, _stop.Token)
                : await node.Data.PushAsync(table, payload!.Memory, options, _stop.Token);
            if (reply.Accepted) await ReplyPushAsync(h.RequestId, reply.Result!, reply.Durable);
            else await ReplyErrorAsync(h.RequestId, reply.Error, isReader: true, clock: EpochIfMisdirected(reply.Error, node));
        }
        catch (MetadataUnavailableException e)
        {
            // A cluster member that does not know the table and found no leader to check with (503 no_leader).
            await ReplyErrorAsync(h.RequestId, e.Error, isReader: true);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A fault in the store or a bug: this frame fails, the stream and the other frames go on.
            _logger.FrameFailed(h.RequestId, e);
            await ReplyErrorAsync(h.RequestId, new ProtocolError(500, ProblemCodes.Internal, $"The server failed on this request: {e.GetType().Name}: {e.Message}"), isReader: true);
        }
        finally
        {
            payload?.Dispose();
        }
    }

    /// <summary>A 421's reply carries the node's ring epoch in its clock field (docs/streaming.md), as REST's header does.</summary>
    private static ulong EpochIfMisdirected(ProtocolError error, Hosting.NodeServices node) =>
        error.Status == 421 ? node.Ranges.Epoch : 0;

    /// <summary>Serves a pull now, or parks it on its clock wait; true when parked (the wait owns the payload).</summary>
    private async ValueTask<bool> PullAsync(StreamRequestHeader h, Hosting.NodeServices node, TableHandle table, PooledBuffer payload)
    {
        IDataPlane data = node.Data;
        // The header parser already refused staleness below -1, so this cannot fail.
        Consistency.TryFromStaleness(h.Staleness, out var consistency);
        // At the limit a pull may still be served if its clocks are already there: ask with no time to wait.
        bool full = Volatile.Read(ref _waiting) >= _settings.StreamMaxWaiting
            || Interlocked.Read(ref _waitingBytes) + payload.Length > _settings.StreamBufferBytes;
        var options = new PullOptions(h.Worker, h.Clock, consistency, full ? TimeSpan.Zero : _waitTimeout, h.RingEpoch);
        if (!data.TryPlanPull(table, payload.Span, options, out var plan, out var error))
        {
            await ReplyErrorAsync(h.RequestId, error, isReader: true, clock: EpochIfMisdirected(error, node));
            return false;
        }
        ValueTask<ClockWait> wait = data.WaitAsync(table, payload.Memory, plan, options, _stop.Token);
        if (wait.IsCompleted || full)
        {
            await ServePullAsync(h, data, table, payload, plan, options, await wait, full, isReader: true);
            return false;
        }

        Interlocked.Increment(ref _pending);
        Interlocked.Increment(ref _waiting);
        Interlocked.Add(ref _waitingBytes, payload.Length);
        _metrics.Waiting(+1);
        _ = ParkAsync(wait, h, data, table, payload, plan, options);
        return true;
    }

    /// <summary>A pull waiting for clocks: answered when they are reached, on timeout (408) or when the stream ends (503).</summary>
    private async Task ParkAsync(ValueTask<ClockWait> wait, StreamRequestHeader h, IDataPlane data, TableHandle table, PooledBuffer payload, KvBlock plan, PullOptions options)
    {
        try
        {
            ClockWait reached;
            try
            {
                reached = await wait;
            }
            catch (OperationCanceledException) when (!_aborted.IsCancellationRequested)
            {
                await ReplyErrorAsync(h.RequestId, new ProtocolError(503, ProblemCodes.Unavailable,
                    $"This pull was waiting for clocks when {EndReason}; it was not served. Send it again."), isReader: false);
                return;
            }
            await ServePullAsync(h, data, table, payload, plan, options, reached, full: false, isReader: false);
        }
        catch (OperationCanceledException) when (_aborted.IsCancellationRequested)
        {
            // The client is gone: nobody to answer.
        }
        catch (Exception e)
        {
            _logger.FrameFailed(h.RequestId, e);
            if (!_aborted.IsCancellationRequested)
                await ReplyErrorAsync(h.RequestId, new ProtocolError(500, ProblemCodes.Internal, $"The server failed on this request: {e.GetType().Name}: {e.Message}"), isReader: false);
        }
        finally
        {
            Interlocked.Add(ref _waitingBytes, -payload.Length);
            Interlocked.Decrement(ref _waiting);
            _metrics.Waiting(-1);
            payload.Dispose();
            Leave();
        }
    }

    /// <summary>
    /// Answers a pull whose wait ended: the reply header and the KV block go into one pooled buffer (the rows
    /// are read straight into its values section), reserved in the reply budget before the rows are read.
    /// </summary>
    private async ValueTask ServePullAsync(StreamRequestHeader h, IDataPlane data, TableHandle table, PooledBuffer payload, KvBlock plan, PullOptions options, ClockWait wait, bool full, bool isReader)
    {
        if (!wait.Error.IsNone)
        {
            if (full)
            {
                var refused = new ProtocolError(429, ProblemCodes.TooManyWaitingPulls,
                    $"This stream already has {Volatile.Read(ref _waiting)} pulls waiting for clocks, holding {Interlocked.Read(ref _waitingBytes)} bytes of keys (limits: --stream-max-waiting {_settings.StreamMaxWaiting}, --stream-buffer {_settings.StreamBufferBytes}), and this one would have to wait too. Read replies before sending more consistent pulls, or spread them over more streams.");
                await ReplyErrorAsync(h.RequestId, refused, isReader);
            }
            else
            {
                await ReplyErrorAsync(h.RequestId, wait.Error, isReader, wait.Behind, wait.Target, wait.ClockMin);
            }
            return;
        }

        long size = StreamReplyHeader.Size + KvBlockWriter.SizeOf(plan.IsRange, plan.Count, table.Dim, values: true);
        long charge = ReplyBudget.ChargeFor(size);
        await _budget.ReserveAsync(charge, isReader, isReader ? _stop.Token : _aborted);
        PooledBuffer? frame = null;
        try
        {
            (frame, ClockWait read) = await DataReplies.PullKvAsync(data, table, payload.Memory, plan, options, StreamReplyHeader.Size, isReader ? _stop.Token : _aborted);
            if (!read.Error.IsNone)
            {
                frame.Dispose();
                frame = null;
                _budget.Release(charge);
                await ReplyErrorAsync(h.RequestId, read.Error, isReader, read.Behind, read.Target, read.ClockMin == ulong.MaxValue ? 0 : read.ClockMin);
                return;
            }
            wait = wait with { ClockMin = Math.Min(wait.ClockMin, read.ClockMin) };
            var flags = StreamFrameFlags.None;
            if ((h.Flags & StreamFrameFlags.Lz4) != 0)
            {
                var packed = FrameLz4.Deflate(frame.Span[StreamReplyHeader.Size..], StreamReplyHeader.Size);
                frame.Dispose();
                frame = packed;
                flags = StreamFrameFlags.Lz4;
            }
            StreamReplyHeader.Write(frame.Span, h.RequestId, 200, flags, wait.ClockMin, frame.Length - StreamReplyHeader.Size);
            _writer.Enqueue(frame, charge);
            frame = null;
        }
        catch
        {
            frame?.Dispose();
            _budget.Release(charge);
            throw;
        }
    }

    /// <summary>
    /// A push or tick reply (u64 rows, u64 applied), written once the push is durable. The reader does not wait
    /// for that: it goes on applying the frames behind, which then join the same write-ahead log batch, and the
    /// writer keeps the replies in order (see <see cref="ReplyWriter.Enqueue"/>).
    /// </summary>
    private async ValueTask ReplyPushAsync(ulong requestId, PushResult result, Task durable)
    {
        if (durable.IsFaulted)
        {
            await ReplyErrorAsync(requestId, await PushReply.AwaitDurableAsync(durable), isReader: true);
            return;
        }
        const int size = StreamReplyHeader.Size + StreamReplyHeader.PushPayloadSize;
        long charge = ReplyBudget.ChargeFor(size);
        await _budget.ReserveAsync(charge, isReader: true, _stop.Token);
        var frame = new PooledBuffer(size) { Length = size };
        StreamReplyHeader.Write(frame.Span, requestId, 200, StreamFrameFlags.None, 0, StreamReplyHeader.PushPayloadSize);
        StreamReplyHeader.WritePushPayload(frame.Span[StreamReplyHeader.Size..], result.Rows, result.Applied);
        if (durable.IsCompletedSuccessfully) _writer.Enqueue(frame, charge);
        else _writer.Enqueue(frame, charge, durable, e => ErrorFrame(requestId, DataErrors.LogFailed(e as IOException ?? new IOException(e.Message, e))));
    }

    /// <summary>An error reply: the problem details JSON that REST would send, with the HTTP status in the header.</summary>
    private async ValueTask ReplyErrorAsync(ulong requestId, ProtocolError error, bool isReader, IReadOnlyList<WorkerClock>? behind = null, ulong? target = null, ulong clock = 0)
    {
        _metrics.FrameFailed();
        byte[] json = DataReplies.ProblemJson(error, behind, target);
        int size = StreamReplyHeader.Size + json.Length;
        long charge = ReplyBudget.ChargeFor(size);
        await _budget.ReserveAsync(charge, isReader, isReader ? _stop.Token : _aborted);
        _writer.Enqueue(ErrorFrame(requestId, error, json, clock), charge);
    }

    /// <summary>An error reply frame: the problem details JSON under the HTTP status.</summary>
    private PooledBuffer ErrorFrame(ulong requestId, ProtocolError error, byte[]? json = null, ulong clock = 0)
    {
        if (json is null)
        {
            _metrics.FrameFailed();
            json = DataReplies.ProblemJson(error);
        }
        int size = StreamReplyHeader.Size + json.Length;
        var frame = new PooledBuffer(size) { Length = size };
        StreamReplyHeader.Write(frame.Span, requestId, (ushort)error.Status, StreamFrameFlags.None, clock, json.Length);
        json.CopyTo(frame.Array.AsSpan(StreamReplyHeader.Size));
        return frame;
    }
}
