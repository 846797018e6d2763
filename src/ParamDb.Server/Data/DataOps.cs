using System.Runtime.InteropServices;
using System.Text.Json;
using ParamDb.Protocol;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Storage;

namespace ParamDb.Server.Data;

/// <summary>
/// Push, tick and pull on KV blocks, shared by the REST endpoints and the stream: validation, the worker stamp,
/// the clock wait and the reply. Everything is checked before anything is applied, so a rejected request
/// changes nothing.
/// </summary>
public static class DataOps
{
    /// <summary>How long a consistent pull waits when the request names no timeout (docs/consistency.md).</summary>
    public static readonly TimeSpan DefaultWaitTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The longest wait a request may ask for: one hour.</summary>
    public static readonly TimeSpan MaxWaitTimeout = TimeSpan.FromHours(1);

    /// <summary>Resolves the open store and a live table, or the problem that stops the request.</summary>
    public static bool TryResolve(StoreHost host, string table, out ParamStore store, out TableHandle handle, out ProtocolError error)
    {
        store = null!;
        handle = null!;
        if (!TableNames.IsValid(table))
        {
            error = InvalidName(table);
            return false;
        }
        if (host.Store is not { } open)
        {
            error = Unavailable;
            return false;
        }
        if (!open.TryGetTable(table, out var found))
        {
            error = TableNotFound(table);
            return false;
        }
        store = open;
        handle = found;
        error = default;
        return true;
    }

    /// <summary>400 <c>invalid_table_name</c>.</summary>
    public static ProtocolError InvalidName(string name) =>
        new(400, ProblemCodes.InvalidTableName, $"'{name}' is not a valid table name: use 1 to {TableNames.MaxLength} characters of A-Z a-z 0-9 _ . -");

    /// <summary>404 <c>table_not_found</c>.</summary>
    public static ProtocolError TableNotFound(string name) =>
        new(404, ProblemCodes.TableNotFound, $"There is no table named '{name}'. Create it with PUT /v1/tables/{name}.");

    /// <summary>503 <c>unavailable</c>: the store is closed.</summary>
    public static readonly ProtocolError Unavailable =
        new(503, ProblemCodes.Unavailable, "The store is not open: the node is starting or stopping. Retry shortly.");

    /// <summary>A push's clock needs a worker: the clock is that worker's.</summary>
    public static bool TryCheckStamp(uint worker, ulong clock, out ProtocolError error)
    {
        if (clock != 0 && worker == 0)
        {
            error = new ProtocolError(400, ProblemCodes.BadHeader, $"Clock {clock} was given without a worker: register with POST /v1/workers and send the id as ParamDb-Worker.");
            return false;
        }
        error = default;
        return true;
    }

    /// <summary>A pull made for a worker renews its lease; an unknown worker is refused.</summary>
    public static bool TryTouchWorker(ParamStore store, uint worker, out ProtocolError error)
    {
        error = default;
        if (worker == 0 || store.TouchWorker(worker)) return true;
        error = WorkerNotFound(worker);
        return false;
    }

    /// <summary>
    /// Validates and applies a push block (already inflated). Acknowledge it only once <paramref name="durable"/>
    /// completes (see <see cref="AwaitDurableAsync"/>).
    /// </summary>
    public static bool TryPush(ParamStore store, TableHandle table, ReadOnlySpan<byte> block, WorkerStamp stamp, int maxKeys, out PushResult result, out Task durable, out ProtocolError error)
    {
        result = null!;
        durable = Task.CompletedTask;
        if (!KvBlock.TryParse(block, KvExpect.Values, maxKeys, out var kv, out error)) return false;
        if (!RowRules.Check(table, kv.Dim, isPull: false, kv.Count, kv.LastKey(block), out error)) return false;
        if (!RowRules.CheckFinite(table, kv.Values(block), kv.IsRange, kv.First, kv.Keys(block), fromJson: false, out error)) return false;
        PushOutcome outcome = kv.IsRange
            ? store.PushRange(table, kv.First, kv.Count, kv.Values(block), stamp)
            : store.Push(table, kv.Keys(block), kv.Values(block), stamp);
        return Finish(outcome, kv.Count, stamp, out result, out durable, out error);
    }

    /// <summary>Applies already-validated rows (the JSON push path); acknowledge once <paramref name="durable"/> completes.</summary>
    public static bool TryPushRows(ParamStore store, TableHandle table, bool range, ulong first, ReadOnlySpan<ulong> keys, int count, ReadOnlySpan<float> values, WorkerStamp stamp, out PushResult result, out Task durable, out ProtocolError error)
    {
        PushOutcome outcome = count == 0
            ? store.Tick(table, stamp)
            : range ? store.PushRange(table, first, count, values, stamp) : store.Push(table, keys, values, stamp);
        return Finish(outcome, count, stamp, out result, out durable, out error);
    }

    /// <summary>An empty push: advances the worker's clock on every range of the table.</summary>
    public static bool TryTick(ParamStore store, TableHandle table, WorkerStamp stamp, out PushResult result, out Task durable, out ProtocolError error) =>
        Finish(store.Tick(table, stamp), 0, stamp, out result, out durable, out error);

    private static bool Finish(PushOutcome outcome, long rows, WorkerStamp stamp, out PushResult result, out Task durable, out ProtocolError error)
    {
        durable = outcome.Durable;
        if (outcome.Status == PushStatus.WorkerNotFound)
        {
            result = null!;
            error = WorkerNotFound(stamp.Worker);
            return false;
        }
        result = new PushResult(rows, outcome.Applied);
        error = default;
        return true;
    }

    /// <summary>
    /// Waits until an applied write is durable in the node's mode; the error when the write-ahead log failed,
    /// in which case the write must not be acknowledged.
    /// </summary>
    public static async ValueTask<ProtocolError> AwaitDurableAsync(Task durable)
    {
        try
        {
            await durable.ConfigureAwait(false);
            return default;
        }
        catch (IOException e)
        {
            return LogFailed(e);
        }
    }

    /// <summary>503 <c>unavailable</c>: the write-ahead log could not be written, so the write is not acknowledged.</summary>
    public static ProtocolError LogFailed(IOException e) =>
        new(503, ProblemCodes.Unavailable, $"This write is not acknowledged: the write-ahead log could not take it ({e.Message}). If it reached memory before the log failed, pulls may see it until the node restarts, and it will not survive the restart. The node takes no more writes until it is restarted.");

    /// <summary>404 <c>worker_not_found</c>.</summary>
    public static ProtocolError WorkerNotFound(uint worker) =>
        new(404, ProblemCodes.WorkerNotFound, $"No registered worker has id {worker}: register with POST /v1/workers (a worker that left with DELETE must register again).");

    /// <summary>
    /// Validates a pull request block against its table and the reply limit, before any wait, so a bad pull fails
    /// at once. The returned block holds offsets into <paramref name="block"/>.
    /// </summary>
    public static bool TryPlanPull(TableHandle table, ReadOnlySpan<byte> block, int maxKeys, long maxReplyBytes, out KvBlock plan, out ProtocolError error)
    {
        if (!KvBlock.TryParse(block, KvExpect.NoValues, maxKeys, out plan, out error)) return false;
        if (!RowRules.Check(table, plan.Dim, isPull: true, plan.Count, plan.LastKey(block), out error)) return false;
        return RowRules.CheckReplySize(table, plan.IsRange, plan.Count, maxReplyBytes, out _, out error);
    }

    /// <summary>
    /// Waits, without blocking a thread, until every live worker of the table has reached the clock the
    /// consistency asks for at <paramref name="clock"/>. Eventual pulls and pulls without a clock return at once.
    /// </summary>
    public static async ValueTask<ClockWait> WaitAsync(ParamStore store, TableHandle table, Consistency consistency, ulong clock, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ulong target = consistency.Target(clock);
        if (target == 0) return new ClockWait(store.ClockMin(table), default, null, 0);
        ClockWaitResult result = await store.WaitForClockAsync(table, target, timeout, cancellationToken).ConfigureAwait(false);
        switch (result.Status)
        {
            case ClockWaitStatus.Reached:
                return new ClockWait(result.ClockMin, default, null, target);
            case ClockWaitStatus.TableDeleted:
                return new ClockWait(0, new ProtocolError(404, ProblemCodes.TableNotFound, $"Table '{table.Name}' was deleted while the pull waited for clock {target}."), null, target);
            case ClockWaitStatus.Closing:
                return new ClockWait(0, new ProtocolError(503, ProblemCodes.Unavailable, "The node is shutting down; the pull stopped waiting. Retry on the restarted node."), null, target);
        }
        var behind = new WorkerClock[result.Behind.Count];
        var names = new System.Text.StringBuilder();
        for (int i = 0; i < behind.Length; i++)
        {
            LaggingWorker w = result.Behind[i];
            behind[i] = new WorkerClock(w.Worker, w.Name, w.Clock);
            if (i > 0) names.Append(", ");
            if (i == 8) { names.Append("and ").Append(behind.Length - 8).Append(" more"); break; }
            names.Append($"worker {w.Worker} ('{w.Name}') at clock {w.Clock}");
        }
        var error = new ProtocolError(408, ProblemCodes.ClockWaitTimeout,
            $"A {consistency} pull at clock {clock} on table '{table.Name}' needs every live worker at clock {target} or later; after {timeout.TotalMilliseconds:F0} ms these were behind: {names}.");
        return new ClockWait(result.ClockMin, error, behind, target);
    }

    /// <summary>
    /// Reads the rows of a planned pull into a new KV reply block that starts <paramref name="headroom"/> bytes
    /// into the returned buffer (the stream writes its reply header there). The rows go straight into the
    /// reply's values section.
    /// </summary>
    public static PooledBuffer PullKv(ParamStore store, TableHandle table, ReadOnlySpan<byte> block, in KvBlock plan, int headroom)
    {
        int size = checked((int)KvBlockWriter.SizeOf(plan.IsRange, plan.Count, table.Dim, values: true));
        var reply = new PooledBuffer(headroom + size) { Length = headroom + size };
        Span<byte> span = reply.Array.AsSpan(headroom, size);
        ReadOnlySpan<ulong> keys = plan.IsRange ? default : plan.Keys(block);
        int valuesOffset = KvBlockWriter.WriteForValues(span, plan.IsRange, plan.First, keys, plan.Count, table.Dim);
        Span<float> values = MemoryMarshal.Cast<byte, float>(span[valuesOffset..]);
        if (plan.IsRange) store.PullRange(table, plan.First, plan.Count, values);
        else store.Pull(table, keys, values);
        return reply;
    }

    /// <summary>The problem-details JSON (UTF-8) of an error, as the stream's error replies carry it.</summary>
    public static byte[] ProblemJson(ProtocolError error, IReadOnlyList<WorkerClock>? behind = null, ulong? target = null) =>
        JsonSerializer.SerializeToUtf8Bytes(new ProblemReply
        {
            Title = Problems.TitleOf(error.Code),
            Status = error.Status,
            Detail = error.Detail,
            Code = error.Code,
            Behind = behind,
            Target = target,
        }, ProtocolJson.Default.ProblemReply);
}

/// <summary>The end of a clock wait.</summary>
/// <param name="ClockMin">The table's minimum clock over live workers, for <c>ParamDb-Clock-Min</c>.</param>
/// <param name="Error">None when the clocks were reached (or nothing was waited for); else <c>clock_wait_timeout</c>.</param>
/// <param name="Behind">On timeout: the live workers behind the target.</param>
/// <param name="Target">The clock waited for (0: no wait).</param>
public readonly record struct ClockWait(ulong ClockMin, ProtocolError Error, IReadOnlyList<WorkerClock>? Behind, ulong Target);
