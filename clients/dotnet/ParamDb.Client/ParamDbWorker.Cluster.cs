using ParamDb.Client.Internal;
using ParamDb.Protocol;
using static ParamDb.Client.Internal.BatchChecks;

namespace ParamDb.Client;

// A worker of a cluster (docs/cluster.md): one stream per node, opened when first used; each call's keys sliced by the
// ring and sent to their primaries with the ring epoch; every clocked push reaching every node once (a tick where it
// has no keys). Requests are queued on the nodes' streams synchronously, in call order, as on one stream.
public sealed partial class ParamDbWorker
{
    private readonly object _streamsLock = new();
    private readonly Dictionary<string, ParamDbStream> _streamsByAddress = new(StringComparer.OrdinalIgnoreCase);
    private volatile NodeStreams? _bound;
    private bool _streamsClosed;

    /// <summary>Where the worker's cluster map comes from (its REST client's); tests give it a stale ring here.</summary>
    internal RingSource Ring => _ring;

    /// <summary>The streams of one map, by its node index.</summary>
    private sealed record NodeStreams(ClusterMap Map, ParamDbStream[] Streams);

    /// <summary>The map to slice by when the server is a cluster this worker routes to; null: everything goes over <see cref="Stream"/>.</summary>
    private ClusterMap? RoutingMap()
    {
        if (!_ring.Enabled) return null;
        if (_ring.Current is { } map) return map.RoutesStream ? map : null;
        // The fetch at registration failed: try again (rate-limited) for later calls; this one goes whole.
        ValueTask<ClusterMap?> fetch = _ring.GetAsync(CancellationToken.None);
        if (!fetch.IsCompleted) _ = fetch.AsTask();
        return null;
    }

    /// <summary>The stream to each node of <paramref name="map"/>: one per node address, the registration's reused, the others opened lazily.</summary>
    private ParamDbStream[] StreamsFor(ClusterMap map)
    {
        NodeStreams? bound = _bound;
        if (bound is not null && ReferenceEquals(bound.Map, map)) return bound.Streams;
        lock (_streamsLock)
        {
            var streams = new ParamDbStream[map.NodeCount];
            for (int n = 0; n < streams.Length; n++)
            {
                // Disposed: the registration stream's refusal is the answer. A node listed without an h2 address gets its
                // slice sent to the registration node instead, which refuses (421) what it does not own.
                if (_streamsClosed || map.H2[n] is not { } address) streams[n] = _stream;
                else if (!_streamsByAddress.TryGetValue(address.Authority, out ParamDbStream? stream))
                {
                    stream = ParamDbStream.OpenLazily(address, _streamOptions);
                    _streamsByAddress[address.Authority] = stream;
                    streams[n] = stream;
                }
                else streams[n] = stream;
            }
            if (!_streamsClosed) _bound = new NodeStreams(map, streams);
            return streams;
        }
    }

    /// <summary>Closes every node's stream but the registration's.</summary>
    private async Task CloseNodeStreamsAsync()
    {
        List<ParamDbStream> others = [];
        lock (_streamsLock)
        {
            _streamsClosed = true;
            foreach (ParamDbStream stream in _streamsByAddress.Values)
                if (!ReferenceEquals(stream, _stream)) others.Add(stream);
            _streamsByAddress.Clear();
            _bound = null;
        }
        var closing = new Task[others.Count];
        for (int i = 0; i < closing.Length; i++) closing[i] = others[i].DisposeAsync().AsTask();
        await Task.WhenAll(closing).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Ticks at <paramref name="stamp"/> on every node of <paramref name="map"/> (under the clock lock).</summary>
    private void TickEveryNode(ClusterMap map, string table, ClockStamp stamp, ref List<Task<PushResult>>? ticks) =>
        // An empty clocked push: a tick to every node that serves, resent like a push's parts if a node fails.
        (ticks ??= []).Add(TickRoutedAsync(map, table, stamp));

    private async Task<PushResult> TickRoutedAsync(ClusterMap map, string table, ClockStamp stamp) =>
        (await Routed.PushAsync(new StreamSender(this, table, stamp, default, tick: true), _ring, map, _ring.TableHash(table),
            Batch.OfKeys(ReadOnlyMemory<ulong>.Empty, default, default, 0), clocked: true, CancellationToken.None).ConfigureAwait(false)).Result;

    private Task<RoutedPush> PushRoutedAsync(ClusterMap map, string table, Batch batch, ClockStamp stamp, in ParamDbCallOptions options, CancellationToken cancellationToken) =>
        Routed.PushAsync(new StreamSender(this, table, stamp, options), _ring, map, _ring.TableHash(table), batch, clocked: true, cancellationToken);

    private async ValueTask<PullResult> PullRoutedAsync(ClusterMap map, string table, Batch batch, ClockStamp stamp, ParamDbCallOptions options, CancellationToken cancellationToken)
    {
        CheckName(table);
        ulong clockMin = await Routed.PullAsync(new StreamSender(this, table, stamp, options), _ring, map, _ring.TableHash(table), batch, cancellationToken).ConfigureAwait(false);
        return new PullResult(clockMin);
    }

    private async ValueTask<float[]> PullNewRoutedAsync(ClusterMap map, string table, Batch batch, ClockStamp stamp, ParamDbCallOptions options, CancellationToken cancellationToken)
    {
        CheckName(table);
        return await Routed.PullNewAsync(new StreamSender(this, table, stamp, options), _ring, map, _ring.TableHash(table), batch, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A routed call's requests: each on its node's stream, with the call's stamp and options and the map's epoch.</summary>
    private sealed class StreamSender(ParamDbWorker worker, string table, ClockStamp stamp, ParamDbCallOptions options, bool tick = false) : SliceSender
    {
        // Once a later clock may have reached a node, this one would be skipped there: never sent again then (a tick
        // carries no rows, and is sent after the clock moved).
        public override bool MaySendAgain => tick || worker.Clock == stamp.Clock;

        public override ValueTask<PushResult> PushAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken)
        {
            ParamDbStream stream = worker.StreamsFor(map)[node];
            ParamDbCallOptions call = options with { RingEpoch = map.Epoch };
            return slice.Range
                ? stream.PushRangeAsync(table, slice.First, slice.Values, slice.Dim, stamp, call, cancellationToken)
                : stream.PushAsync(table, slice.Keys, slice.Values, stamp, call, cancellationToken);
        }

        public override ValueTask<PushResult> TickAsync(ClusterMap map, int node, CancellationToken cancellationToken) =>
            worker.StreamsFor(map)[node].TickAsync(table, stamp, options with { RingEpoch = map.Epoch }, cancellationToken);

        public override async ValueTask<ulong> PullAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken)
        {
            ParamDbStream stream = worker.StreamsFor(map)[node];
            ParamDbCallOptions call = options with { RingEpoch = map.Epoch };
            PullResult result = await (slice.Range
                ? stream.PullRangeAsync(table, slice.First, slice.Count, slice.Destination, stamp, call, cancellationToken)
                : stream.PullAsync(table, slice.Keys, slice.Destination, stamp, call, cancellationToken)).ConfigureAwait(false);
            return result.ClockMin;
        }

        public override ValueTask<float[]> PullNewAsync(ClusterMap map, int node, Batch slice, CancellationToken cancellationToken)
        {
            ParamDbStream stream = worker.StreamsFor(map)[node];
            ParamDbCallOptions call = options with { RingEpoch = map.Epoch };
            return slice.Range
                ? stream.PullRangeAsync(table, slice.First, slice.Count, stamp, call, cancellationToken)
                : stream.PullAsync(table, slice.Keys, stamp, call, cancellationToken);
        }
    }
}
