using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using ParamDb.Server.Http;

namespace ParamDb.Server.Streaming;

/// <summary>
/// The one loop that writes a stream's reply frames to <c>Response.BodyWriter</c>. Replies come from the reader
/// loop and from released waiting pulls, in any order; each is a complete frame in a pooled buffer whose bytes
/// were reserved in the <see cref="ReplyBudget"/>. A burst of small replies costs one flush: the loop flushes
/// when the queue is empty, or after <see cref="FlushEvery"/> bytes so a queue of large replies is not all
/// copied into Kestrel's pipe before the first flush applies HTTP/2 backpressure.
/// </summary>
internal sealed class ReplyWriter
{
    /// <summary>
    /// Bytes copied into the response pipe between flushes: 1 MiB, so a burst of ~25,000 acknowledgements costs
    /// one flush, while a queue of large replies is not all copied into Kestrel's pipe (which only pushes back
    /// on a flush, past 64 KiB unflushed) before the first flush applies HTTP/2 backpressure.
    /// </summary>
    public const int FlushEvery = 1 << 20;

    private readonly Channel<Reply> _queue = Channel.CreateUnbounded<Reply>(new UnboundedChannelOptions
    {
        SingleReader = true,
        // Enqueuers must not run the writer loop inline: the reader loop would end up writing to the socket.
        AllowSynchronousContinuations = false,
    });
    private readonly ReplyBudget _budget;
    private readonly StreamMetrics _metrics;

    public ReplyWriter(ReplyBudget budget, StreamMetrics metrics)
    {
        _budget = budget;
        _metrics = metrics;
    }

    /// <summary>Queues a complete reply frame; the writer owns <paramref name="frame"/> from here on.</summary>
    /// <param name="frame">The frame, length prefix included.</param>
    /// <param name="charge">What was reserved for it in the budget; given back once it is flushed.</param>
    /// <param name="gate">
    /// When set, the frame (and every reply queued after it) is written only once this completes: a push is
    /// acknowledged when it is durable, and the replies behind it keep their order without holding the reader.
    /// Gates complete in the order their pushes were logged, so waiting on each in turn costs no extra latency.
    /// </param>
    /// <param name="onGateFault">Builds the frame written instead when <paramref name="gate"/> faults.</param>
    public void Enqueue(PooledBuffer frame, long charge, Task? gate = null, Func<Exception, PooledBuffer>? onGateFault = null)
    {
        if (_queue.Writer.TryWrite(new Reply(frame, charge, gate, onGateFault))) return;
        // The stream is over (client gone): drop the reply.
        frame.Dispose();
        _budget.Release(charge);
    }

    /// <summary>No more replies will be queued; the loop ends once it has written those it has.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Writes replies until <see cref="Complete"/> and the queue is empty, or the client is gone.</summary>
    public async Task RunAsync(PipeWriter output, CancellationToken aborted)
    {
        long unflushed = 0, charged = 0;
        int written = 0;

        // Replies fully written before a flush are out of the queue's memory once it completes.
        void Flushed()
        {
            unflushed = 0;
            _budget.Release(charged);
            _metrics.RepliesWritten(written);
            charged = 0;
            written = 0;
        }

        try
        {
            while (await _queue.Reader.WaitToReadAsync(aborted).ConfigureAwait(false))
            {
                while (_queue.Reader.TryRead(out var reply))
                {
                    PooledBuffer frame = reply.Frame;
                    if (reply.Gate is { IsCompleted: false } gate)
                    {
                        // Send what is ready before waiting: those replies do not depend on the gate. This
                        // reply's bytes stay reserved until it is written (or given back in finally).
                        if (!await FlushAsync(output, aborted).ConfigureAwait(false))
                        {
                            frame.Dispose();
                            charged += reply.Charge;
                            return;
                        }
                        Flushed();
                        try
                        {
                            await gate.WaitAsync(aborted).ConfigureAwait(false);
                        }
                        catch (Exception) when (!aborted.IsCancellationRequested && gate.IsFaulted)
                        {
                            // Handled below: the fault replaces the frame.
                        }
                        catch (OperationCanceledException)
                        {
                            frame.Dispose();
                            charged += reply.Charge;
                            throw;
                        }
                    }
                    // Charged from here, so a failed write still gives its bytes back in finally.
                    charged += reply.Charge;
                    written++;
                    if (reply.Gate is { IsFaulted: true } failed && reply.OnGateFault is { } onFault)
                    {
                        frame.Dispose();
                        frame = onFault(failed.Exception!.InnerException ?? failed.Exception);
                    }
                    using (frame)
                    {
                        ReadOnlyMemory<byte> bytes = frame.Memory;
                        while (!bytes.IsEmpty)
                        {
                            int n = (int)Math.Min(bytes.Length, FlushEvery - unflushed);
                            output.Write(bytes.Span[..n]);
                            bytes = bytes[n..];
                            unflushed += n;
                            if (unflushed < FlushEvery) continue;
                            if (!await FlushAsync(output, aborted).ConfigureAwait(false)) return;
                            Flushed();
                        }
                    }
                }
                if (!await FlushAsync(output, aborted).ConfigureAwait(false)) return;
                Flushed();
            }
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException or ConnectionAbortedException)
        {
            // The client went away; what is left is dropped below.
        }
        finally
        {
            _queue.Writer.TryComplete();
            _budget.Release(charged);
            while (_queue.Reader.TryRead(out var left))
            {
                left.Frame.Dispose();
                _budget.Release(left.Charge);
            }
        }
    }

    /// <summary>Flushes; false when the client can no longer be written to.</summary>
    private static async ValueTask<bool> FlushAsync(PipeWriter output, CancellationToken aborted)
    {
        FlushResult result = await output.FlushAsync(aborted).ConfigureAwait(false);
        return !result.IsCompleted && !result.IsCanceled;
    }

    private readonly record struct Reply(PooledBuffer Frame, long Charge, Task? Gate, Func<Exception, PooledBuffer>? OnGateFault);
}
