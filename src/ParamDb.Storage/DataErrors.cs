using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// The problems a data request can meet, in one place so REST, the stream and a cluster's peers word them alike
/// (docs/wire-format.md lists the codes).
/// </summary>
public static class DataErrors
{
    /// <summary>How long a consistent pull waits when the request names no timeout (docs/consistency.md).</summary>
    public static readonly TimeSpan DefaultWaitTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The longest wait a request may ask for: one hour.</summary>
    public static readonly TimeSpan MaxWaitTimeout = TimeSpan.FromHours(1);

    /// <summary>400 <c>invalid_table_name</c>.</summary>
    public static ProtocolError InvalidName(string name) =>
        new(400, ProblemCodes.InvalidTableName, $"'{name}' is not a valid table name: use 1 to {TableNames.MaxLength} characters of A-Z a-z 0-9 _ . -");

    /// <summary>404 <c>table_not_found</c>.</summary>
    public static ProtocolError TableNotFound(string name) =>
        new(404, ProblemCodes.TableNotFound, $"There is no table named '{name}'. Create it with PUT /v1/tables/{name}.");

    /// <summary>503 <c>unavailable</c>: the store is closed.</summary>
    public static readonly ProtocolError Unavailable =
        new(503, ProblemCodes.Unavailable, "The store is not open: the node is starting or stopping. Retry shortly.");

    /// <summary>A routed push that reached the store after its ranges changed (a failover or a join moved arcs).</summary>
    public static readonly ProtocolError RangesChanged =
        new(503, ProblemCodes.Unavailable, "The node's ranges changed while this push was on its way to its store (the cluster's ring moved on); nothing of it was applied here. Retry it; a push with a worker clock is applied once.");

    /// <summary>404 <c>worker_not_found</c>.</summary>
    public static ProtocolError WorkerNotFound(uint worker) =>
        new(404, ProblemCodes.WorkerNotFound, $"No registered worker has id {worker}: register with POST /v1/workers (a worker that left with DELETE must register again).");

    /// <summary>400 <c>bad_header</c>: a clock without the worker it belongs to.</summary>
    public static ProtocolError ClockWithoutWorker(ulong clock) =>
        new(400, ProblemCodes.BadHeader, $"Clock {clock} was given without a worker: register with POST /v1/workers and send the id as ParamDb-Worker.");

    /// <summary>503 <c>unavailable</c>: the write-ahead log could not be written, so the write is not acknowledged.</summary>
    public static ProtocolError LogFailed(IOException e) =>
        new(503, ProblemCodes.Unavailable, $"This write is not acknowledged: the write-ahead log could not take it ({e.Message}). If it reached memory before the log failed, pulls may see it until the node restarts, and it will not survive the restart. The node takes no more writes until it is restarted.");
}
