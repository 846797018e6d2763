using System.Net;
using ParamDb.Client.Internal;
using ParamDb.Protocol;

namespace ParamDb.Client;

/// <summary>
/// A registered worker in the spirit of ps-lite's <c>KVWorker</c>: pipelined push, pull and push-pull over one
/// <see cref="ParamDbStream"/>, every request stamped with this worker's id and clock (docs/consistency.md).
/// <code>
/// await using var worker = await ParamDbWorker.RegisterAsync(new Uri("http://127.0.0.1:7421"), "w0", ["emb"]);
/// for (int step = 0; step &lt; steps; step++)
/// {
///     await worker.PullAsync("emb", keys, weights, new() { Consistency = Consistency.Bounded(2) }); // SSP, τ = 2
///     Compute(weights, grads);
///     await worker.PushAsync("emb", keys, grads);    // at most one push per table per clock
///     await worker.EndIterationAsync();              // ticks the tables not pushed; Clock += 1
/// }
/// </code>
/// </summary>
/// <remarks>
/// <para><b>Clock.</b> <see cref="Clock"/> starts at 1 and counts iterations; it moves only when you call
/// <see cref="EndIterationAsync"/>. Pushes and pulls carry the clock current when they are called. A pull at clock c
/// with sequential consistency waits until every live worker of the table has finished iteration c-1 (c-1-τ for
/// bounded τ); eventual never waits.</para>
/// <para><b>One push per table per clock.</b> The server keeps, per range, the highest clock it applied from each
/// worker and skips pushes at or below it — that is what makes a retry exactly-once — and a push advances every
/// range of the table on the node. So a second push to the same table at the same clock would be silently dropped;
/// this class refuses it with <see cref="InvalidOperationException"/> instead. To push several batches per
/// iteration, merge them, or end the iteration between them (docs/consistency.md: increasing clocks). A push that failed
/// (refused, timed out, cancelled, or lost with its connection) gives the table back for this clock: pushing the
/// same batch again is safe, since the server applies it at most once (<see cref="PushResult.Applied"/> says).</para>
/// <para><b>Automatic ticks.</b> <see cref="EndIterationAsync"/> sends an empty push (a tick) at the ending clock to
/// every registered table that was not pushed in the iteration, so other workers' consistent pulls never wait on
/// a table this worker had nothing for.</para>
/// <para><b>Lease.</b> A timer renews the lease every third of it; <see cref="DisposeAsync"/> leaves (<c>DELETE</c>),
/// so consistent pulls stop waiting for this worker at once rather than when the lease runs out.</para>
/// <para><b>Clusters.</b> When the server is a cluster (<c>GET /v1/cluster</c> lists several nodes) and
/// <see cref="ParamDbWorkerOptions.Routing"/> is <see cref="ParamDbRouting.Auto"/>, the worker keeps one stream per node,
/// opened when first needed, and sends each node its own keys with the ring epoch; every push (and every tick) reaches
/// every node once at its clock, as an empty push where the node has none of its keys. A node that answers 421
/// <c>wrong_node</c> makes the worker fetch the ring again and send that node's keys again at the same clock.
/// Registration and heartbeats stay with the node the worker registered at.</para>
/// <para><b>Buffers</b> are the caller's until the returned task completes, as in <see cref="ParamDbStream"/>.
/// Thread-safe; the clock is one per worker, so concurrent callers share its iterations.</para>
/// </remarks>
public sealed partial class ParamDbWorker : IAsyncDisposable
{
    private readonly HttpMessageHandler _handler;
    private readonly ParamDbClient _rest;
    private readonly ParamDbStream _stream;
    private readonly ParamDbStreamOptions _streamOptions;
    private readonly RingSource _ring;
    private readonly Consistency _consistency;
    private readonly CancellationTokenSource _stop = new();
    private Task _heartbeats = Task.CompletedTask;
    private Task? _disposal;
    private volatile bool _leaseLost;

    // The clock and which tables were pushed at it; guarded by _clockLock.
    private readonly object _clockLock = new();
    private ulong _clock = 1;
    private readonly string[] _tables;
    private readonly Dictionary<string, int> _tableIndex;
    private readonly bool[] _pushed;
    private readonly HashSet<string> _pushedUnregistered = new(StringComparer.Ordinal);

    private ParamDbWorker(WorkerInfo info, string[] tables, HttpMessageHandler handler, ParamDbClient rest, ParamDbStream stream, ParamDbWorkerOptions options)
    {
        Id = info.Worker;
        Name = info.Name;
        Lease = TimeSpan.FromMilliseconds(info.LeaseMs);
        _tables = tables;
        _handler = handler;
        _rest = rest;
        _stream = stream;
        _streamOptions = options.Stream;
        _ring = rest.Ring;
        _streamsByAddress[stream.Address.Authority] = stream;
        _consistency = options.Consistency;
        _tableIndex = new Dictionary<string, int>(tables.Length, StringComparer.Ordinal);
        for (int i = 0; i < tables.Length; i++) _tableIndex[tables[i]] = i;
        _pushed = new bool[tables.Length];
    }

    /// <summary>
    /// Registers a worker for <paramref name="tables"/> (<c>POST /v1/workers</c>), opens its stream, and starts the
    /// heartbeats.
    /// </summary>
    /// <param name="address">The node's cleartext HTTP/2 address, <c>http://host:7421</c>.</param>
    /// <param name="name">A name for people and logs (1…128 characters).</param>
    /// <param name="tables">The tables this worker pushes to: consistent pulls of them wait for its clock, and its
    /// automatic ticks go to them. At least one: the ticks need to know where to go.</param>
    /// <param name="lease">How long the server counts the worker without a heartbeat; default 10 s, 100 ms…1 h.</param>
    /// <param name="options">Consistency default, REST address, stream options; defaults when null.</param>
    /// <param name="cancellationToken">Cancels registering.</param>
    /// <exception cref="ArgumentException">No tables, an invalid or repeated table name, a bad name or lease.</exception>
    /// <exception cref="ParamDbException">The server refused the registration or the stream.</exception>
    public static async Task<ParamDbWorker> RegisterAsync(Uri address, string name, IReadOnlyList<string> tables, TimeSpan? lease = null,
        ParamDbWorkerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        string[] registered = CheckRegistration(name, tables, lease);
        options ??= new ParamDbWorkerOptions();
        options.Stream.Validate();
        var handler = ParamDbStream.CreateHandler();
        ParamDbClient rest = options.RestAddress is { } restAddress
            ? new ParamDbClient(restAddress, new ParamDbClientOptions { Timeout = options.RestTimeout, Routing = options.Routing })
            : new ParamDbClient(new HttpClient(handler, disposeHandler: false)
            {
                BaseAddress = address,
                DefaultRequestVersion = HttpVersion.Version20,
                DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Timeout = options.RestTimeout,
            }, new ParamDbClientOptions { Routing = options.Routing });
        WorkerInfo? info = null;
        try
        {
            info = await rest.RegisterWorkerAsync(new WorkerRegistration
            {
                Name = name,
                Tables = registered,
                LeaseMs = lease is { } l ? (int)l.TotalMilliseconds : null,
            }, cancellationToken).ConfigureAwait(false);
            var stream = await ParamDbStream.OpenAsync(new HttpMessageInvoker(handler, disposeHandler: false), ownsHttp: true,
                address, options.Stream, cancellationToken).ConfigureAwait(false);
            // The ring, so that every call can slice its keys synchronously, in call order (null: not a cluster).
            if (await rest.Ring.GetAsync(cancellationToken).ConfigureAwait(false) is { RoutesStream: true } map)
                await KnownEverywhereAsync(rest, map, info.Worker, options.RestTimeout, cancellationToken).ConfigureAwait(false);
            var worker = new ParamDbWorker(info, registered, handler, rest, stream, options);
            TimeSpan interval = options.HeartbeatInterval ?? worker.Lease / 3;
            worker._heartbeats = worker.HeartbeatAsync(interval);
            return worker;
        }
        catch
        {
            if (info is not null)
            {
                try
                {
                    await rest.RemoveWorkerAsync(info.Worker, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // The lease runs out on its own.
                }
            }
            rest.Dispose();
            handler.Dispose();
            throw;
        }
    }

    /// <summary>The worker id the server gave; it is in every request's frame.</summary>
    public uint Id { get; }

    /// <summary>The registered name.</summary>
    public string Name { get; }

    /// <summary>The tables this worker counts for and ticks, as registered.</summary>
    public IReadOnlyList<string> Tables => _tables;

    /// <summary>The lease the server granted.</summary>
    public TimeSpan Lease { get; }

    /// <summary>The current iteration, from 1; pushes and pulls carry it. <see cref="EndIterationAsync"/> advances it.</summary>
    public ulong Clock
    {
        get { lock (_clockLock) return _clock; }
    }

    /// <summary>
    /// True once a heartbeat was answered <c>worker_not_found</c>: the server no longer knows this worker (it was
    /// removed), so its pushes fail; register a new one. A lease that merely expired is renewed by the next heartbeat.
    /// </summary>
    public bool LeaseLost => _leaseLost;

    /// <summary>
    /// The stream this worker sends on (in a cluster: the one to the node it registered at), for requests you stamp
    /// yourself (they bypass the clock rules above).
    /// </summary>
    public ParamDbStream Stream => _stream;

    /// <summary>
    /// Ends the current iteration: sends a tick at <see cref="Clock"/> to every registered table not pushed at it (in a
    /// cluster, to every node),
    /// then advances the clock. The ticks are queued before this returns to you, so anything called afterwards is
    /// sent after them; the task completes when the server has applied them.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting for the ticks (they are sent anyway: the clock has moved).</param>
    /// <exception cref="ParamDbException">A tick was refused (<c>table_not_found</c>, <c>worker_not_found</c>); the clock has advanced all the same.</exception>
    public Task EndIterationAsync(CancellationToken cancellationToken = default)
    {
        List<Task<PushResult>>? ticks = null;
        lock (_clockLock)
        {
            var stamp = new ClockStamp(Id, _clock);
            ClusterMap? map = RoutingMap();
            for (int i = 0; i < _tables.Length; i++)
            {
                if (_pushed[i]) continue;
                if (map is null) (ticks ??= []).Add(_stream.TickAsync(_tables[i], stamp).AsTask());
                else TickEveryNode(map, _tables[i], stamp, ref ticks);
            }
            _clock++;
            Array.Clear(_pushed);
            _pushedUnregistered.Clear();
        }
        return ticks is null ? Task.CompletedTask : Task.WhenAll(ticks).WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Stops the heartbeats, closes the stream (waiting for replies already due, see
    /// <see cref="ParamDbStreamOptions.CloseTimeout"/>) and leaves (<c>DELETE /v1/workers/{id}</c>). Never throws: if
    /// the server cannot be reached, the lease runs out instead.
    /// </summary>
    public ValueTask DisposeAsync()
    {
        lock (_clockLock) _disposal ??= DisposeCoreAsync();
        return new ValueTask(_disposal);
    }

    private async Task DisposeCoreAsync()
    {
        _stop.Cancel();
        await _heartbeats.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await CloseNodeStreamsAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        if (!_leaseLost)
        {
            try
            {
                await _rest.RemoveWorkerAsync(Id, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ParamDbException or HttpRequestException or IOException or OperationCanceledException)
            {
                // Gone already, or unreachable: the lease expires on its own.
            }
        }
        _rest.Dispose();
        _handler.Dispose();
        _stop.Dispose();
    }

    /// <summary>
    /// Waits until every node of the ring lists the new worker. A registration is committed through the cluster's
    /// server manager and reaches the other nodes when they apply it; a push sent straight to a node that has not yet
    /// would be refused <c>worker_not_found</c>. Best effort: a node that does not answer, or not in time, is not waited
    /// for.
    /// </summary>
    private static async Task KnownEverywhereAsync(ParamDbClient rest, ClusterMap map, uint worker, TimeSpan limit, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        foreach (Uri? node in map.Rest)
        {
            if (node is null) continue;
            while (true)
            {
                IReadOnlyList<WorkerInfo> known;
                try
                {
                    known = await rest.ListWorkersAsync(node, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is ParamDbException or HttpRequestException or IOException or InvalidDataException
                                           or System.Text.Json.JsonException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                bool found = false;
                foreach (WorkerInfo w in known) found |= w.Worker == worker;
                if (found || Environment.TickCount64 > deadline) break;
                await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Renews the lease on a timer; transient failures wait for the next tick (the lease covers about three).</summary>
    private async Task HeartbeatAsync(TimeSpan interval)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    await _rest.HeartbeatWorkerAsync(Id, _stop.Token).ConfigureAwait(false);
                }
                catch (ParamDbException e) when (e.Code == ProblemCodes.WorkerNotFound)
                {
                    _leaseLost = true;
                    return;
                }
                catch (Exception e) when (!_stop.IsCancellationRequested && e is ParamDbException or HttpRequestException or IOException or OperationCanceledException)
                {
                    // Try again at the next tick.
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed.
        }
    }

    private static string[] CheckRegistration(string name, IReadOnlyList<string> tables, TimeSpan? lease)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name.Length > WorkerLimits.MaxNameLength)
            throw new ArgumentException($"A worker name has at most {WorkerLimits.MaxNameLength} characters; this one has {name.Length}.", nameof(name));
        ArgumentNullException.ThrowIfNull(tables);
        if (tables.Count == 0)
            throw new ArgumentException("Name the tables this worker pushes to: its automatic ticks go to them.", nameof(tables));
        if (tables.Count > WorkerLimits.MaxTables)
            throw new ArgumentException($"A worker counts for at most {WorkerLimits.MaxTables} tables; {tables.Count} were given.", nameof(tables));
        var names = new string[tables.Count];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
        {
            Internal.BatchChecks.CheckName(tables[i]);
            if (!seen.Add(tables[i])) throw new ArgumentException($"Table \"{tables[i]}\" is named twice.", nameof(tables));
            names[i] = tables[i];
        }
        if (lease is { } l && (l.TotalMilliseconds < WorkerLimits.MinLeaseMs || l.TotalMilliseconds > WorkerLimits.MaxLeaseMs))
            throw new ArgumentOutOfRangeException(nameof(lease), $"A lease is {WorkerLimits.MinLeaseMs} ms to {WorkerLimits.MaxLeaseMs / 60_000} min; got {l}.");
        return names;
    }
}
