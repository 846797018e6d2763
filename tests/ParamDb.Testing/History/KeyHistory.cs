using System.Diagnostics;

namespace ParamDb.Testing.History;

/// <summary>What a client learned about an operation it sent.</summary>
public enum Outcome
{
    /// <summary>Acknowledged: it took effect once, between its start and its end.</summary>
    Ok,

    /// <summary>Refused with an answer that says nothing changed (a 4xx, or 503 <c>no_leader</c>): it never took effect.</summary>
    Failed,

    /// <summary>
    /// No answer (a timeout, a broken connection, a killed node, a 503 that may or may not have applied): a push may
    /// have taken effect at any moment after its start, or never; a pull taught nothing.
    /// </summary>
    Unknown,
}

/// <summary>Push adds <see cref="Operation.Argument"/> to the key's value; pull reads it.</summary>
public enum OpKind
{
    /// <summary>An <c>add</c> of the argument to the key's value.</summary>
    Push,

    /// <summary>A read of the key's value, <see cref="Operation.Result"/>.</summary>
    Pull,
}

/// <summary>
/// One operation on one key as a client saw it: when it was sent and when the answer came
/// (<see cref="Stopwatch"/> ticks), what it was and what came back. Values are integers: the tests push whole
/// numbers, whose float32 sums are exact below 2^24, so the order of additions cannot change a value.
/// </summary>
/// <param name="Client">Who sent it (one operation at a time per client).</param>
/// <param name="Start">When it was sent.</param>
/// <param name="End">When its answer came; ignored unless <see cref="Outcome"/> is <see cref="Outcome.Ok"/>.</param>
/// <param name="Kind">Push or pull.</param>
/// <param name="Argument">A push's increment.</param>
/// <param name="Result">A pull's value.</param>
/// <param name="Outcome">What the client learned.</param>
public readonly record struct Operation(int Client, long Start, long End, OpKind Kind, long Argument, long Result, Outcome Outcome)
{
    /// <summary>An acknowledged push of <paramref name="delta"/> sent at <paramref name="start"/>, answered at <paramref name="end"/>.</summary>
    public static Operation Push(int client, long start, long end, long delta, Outcome outcome = Outcome.Ok) =>
        new(client, start, end, OpKind.Push, delta, 0, outcome);

    /// <summary>A pull sent at <paramref name="start"/> that read <paramref name="value"/> at <paramref name="end"/>.</summary>
    public static Operation Pull(int client, long start, long end, long value) =>
        new(client, start, end, OpKind.Pull, 0, value, Outcome.Ok);

    /// <inheritdoc />
    public override string ToString() => Kind == OpKind.Push
        ? $"client {Client} push +{Argument} [{Start}, {(Outcome == Outcome.Ok ? End.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?")}] {Outcome}"
        : $"client {Client} pull = {Result} [{Start}, {End}] {Outcome}";
}

/// <summary>
/// Records the operations of many clients on many keys, thread-safely, for a check afterwards
/// (<see cref="Linearizability"/>). Times come from <see cref="Stopwatch.GetTimestamp"/>, one clock for every
/// thread of the test process.
/// </summary>
public sealed class HistoryRecorder
{
    private readonly Lock _sync = new();
    private readonly Dictionary<ulong, List<Operation>> _byKey = [];

    /// <summary>The current time on the recorder's clock: take it just before sending.</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    /// <summary>Records a push of <paramref name="delta"/> to <paramref name="key"/> sent at <paramref name="start"/>; its end is now.</summary>
    public void Push(int client, ulong key, long start, long delta, Outcome outcome) =>
        Add(key, new Operation(client, start, Now(), OpKind.Push, delta, 0, outcome));

    /// <summary>Records a pull of <paramref name="key"/> sent at <paramref name="start"/> that read <paramref name="value"/>; its end is now.</summary>
    public void Pull(int client, ulong key, long start, long value) =>
        Add(key, new Operation(client, start, Now(), OpKind.Pull, 0, value, Outcome.Ok));

    /// <summary>The keys with at least one operation.</summary>
    public IReadOnlyCollection<ulong> Keys
    {
        get
        {
            lock (_sync) return [.. _byKey.Keys];
        }
    }

    /// <summary>A copy of one key's operations, in the order they were recorded.</summary>
    public IReadOnlyList<Operation> Of(ulong key)
    {
        lock (_sync) return _byKey.TryGetValue(key, out var ops) ? [.. ops] : [];
    }

    /// <summary>Operations recorded, all keys.</summary>
    public int Count
    {
        get
        {
            lock (_sync)
            {
                int n = 0;
                foreach (var ops in _byKey.Values) n += ops.Count;
                return n;
            }
        }
    }

    private void Add(ulong key, Operation op)
    {
        lock (_sync)
        {
            if (!_byKey.TryGetValue(key, out var ops)) _byKey[key] = ops = [];
            ops.Add(op);
        }
    }
}
