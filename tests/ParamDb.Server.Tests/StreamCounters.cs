using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using ParamDb.Server.Streaming;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>
/// Reads one node's <see cref="StreamMetrics"/> through a <see cref="MeterListener"/>, as an exporter would: only
/// the meter that node's <see cref="IMeterFactory"/> made, so nodes of other tests in the process do not count.
/// </summary>
internal sealed class StreamCounters : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _values = new();

    public StreamCounters(RunningServer server)
    {
        var scope = server.Services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == StreamMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, scope))
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (_values) _values[instrument.Name] = value;
        });
        _listener.Start();
    }

    /// <summary>The instrument's value now.</summary>
    public long this[string name]
    {
        get
        {
            lock (_values)
            {
                _listener.RecordObservableInstruments();
                return _values.TryGetValue(name, out long v) ? v : throw new InvalidOperationException($"No instrument {name} on this node.");
            }
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling the counters; fails after the deadline.</summary>
    public async Task WaitUntilAsync(Func<StreamCounters, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + StreamClient.Deadline;
        // Counters have no change event: poll them every 5 ms until the condition holds or the deadline passes.
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
        while (!condition(this))
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"Timed out waiting until {what}.");
            await poll.WaitForNextTickAsync();
        }
    }

    public void Dispose() => _listener.Dispose();
}
