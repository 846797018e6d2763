using System.Diagnostics.Metrics;

namespace ParamDb.Server.Streaming;

/// <summary>
/// Counters of <c>POST /v1/stream</c> for this node, published on the meter <see cref="MeterName"/> (created
/// through the host's <see cref="IMeterFactory"/>, so each node in a process has its own and a metrics exporter
/// finds them). Updated with interlocked adds on the hot path; read when a listener observes them.
/// </summary>
public sealed class StreamMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "ParamDb.Stream";

    /// <summary>Instrument names, stable: dashboards and tests use them.</summary>
    public static class Names
    {
        /// <summary>Streams open now.</summary>
        public const string Active = "paramdb.stream.active";
        /// <summary>Request frames read, malformed ones included.</summary>
        public const string Frames = "paramdb.stream.frames";
        /// <summary>Request frames answered with an error reply, and stream-level errors.</summary>
        public const string FrameErrors = "paramdb.stream.frame_errors";
        /// <summary>Reply frames handed to Kestrel.</summary>
        public const string Replies = "paramdb.stream.replies";
        /// <summary>Pulls waiting for clocks now, over all streams.</summary>
        public const string WaitingPulls = "paramdb.stream.waiting_pulls";
        /// <summary>Bytes charged to reply queues now, over all streams.</summary>
        public const string QueuedBytes = "paramdb.stream.reply_queue.bytes";
        /// <summary>The most bytes any one stream's reply queue has held since start.</summary>
        public const string QueuedBytesPeak = "paramdb.stream.reply_queue.peak_bytes";
        /// <summary>Streams whose reader is stopped now because their reply queue is full.</summary>
        public const string ReadersPaused = "paramdb.stream.readers_paused";
    }

    private long _active, _frames, _frameErrors, _replies, _waiting, _queued, _peak, _paused;

    /// <summary>Creates the counters and publishes them on a meter from <paramref name="meterFactory"/>.</summary>
    public StreamMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableUpDownCounter(Names.Active, () => Volatile.Read(ref _active), "{stream}", "Streams open now.");
        meter.CreateObservableCounter(Names.Frames, () => Volatile.Read(ref _frames), "{frame}", "Request frames read.");
        meter.CreateObservableCounter(Names.FrameErrors, () => Volatile.Read(ref _frameErrors), "{frame}", "Frames answered with an error.");
        meter.CreateObservableCounter(Names.Replies, () => Volatile.Read(ref _replies), "{frame}", "Reply frames written.");
        meter.CreateObservableUpDownCounter(Names.WaitingPulls, () => Volatile.Read(ref _waiting), "{pull}", "Pulls waiting for clocks.");
        meter.CreateObservableUpDownCounter(Names.QueuedBytes, () => Volatile.Read(ref _queued), "By", "Bytes charged to reply queues.");
        meter.CreateObservableGauge(Names.QueuedBytesPeak, () => Volatile.Read(ref _peak), "By", "Most bytes one stream's reply queue has held.");
        meter.CreateObservableUpDownCounter(Names.ReadersPaused, () => Volatile.Read(ref _paused), "{stream}", "Readers stopped by a full reply queue.");
    }

    internal void StreamOpened() => Interlocked.Increment(ref _active);
    internal void StreamClosed() => Interlocked.Decrement(ref _active);
    internal void FrameRead() => Interlocked.Increment(ref _frames);
    internal void FrameFailed() => Interlocked.Increment(ref _frameErrors);
    internal void RepliesWritten(int n) => Interlocked.Add(ref _replies, n);
    internal void Waiting(int delta) => Interlocked.Add(ref _waiting, delta);
    internal void AddQueued(long delta) => Interlocked.Add(ref _queued, delta);
    internal void ReaderPaused(int delta) => Interlocked.Add(ref _paused, delta);

    internal void ObservePeak(long used)
    {
        long peak = Volatile.Read(ref _peak);
        while (used > peak)
        {
            long seen = Interlocked.CompareExchange(ref _peak, used, peak);
            if (seen == peak) return;
            peak = seen;
        }
    }
}
