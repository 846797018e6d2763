using System.Globalization;
using System.Net.Http.Json;
using ParamDb.Protocol;

namespace ParamDb.Client;

// Workers (docs/consistency.md): registration, heartbeats, leaving. ParamDbWorker uses these and renews its lease
// itself; call them directly to manage workers by hand.
public sealed partial class ParamDbClient
{
    /// <summary>Registers a worker (<c>POST /v1/workers</c>); its clocks then count for consistent pulls of its tables.</summary>
    /// <param name="registration">Name, tables (null or empty: every table) and lease.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The worker with its id, live, with a full lease.</returns>
    /// <exception cref="ParamDbException"><c>invalid_worker</c>.</exception>
    public async Task<WorkerInfo> RegisterWorkerAsync(WorkerRegistration registration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        using var request = NewRequest(HttpMethod.Post, "v1/workers");
        request.Content = JsonContent.Create(registration, ProtocolJson.Default.WorkerRegistration);
        return await SendForJsonAsync(request, ProtocolJson.Default.WorkerInfo, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Renews a worker's lease (<c>POST /v1/workers/{id}/heartbeat</c>); a worker whose lease expired is live again.</summary>
    /// <exception cref="ParamDbException"><c>worker_not_found</c>: it never registered or has left.</exception>
    public async Task<WorkerInfo> HeartbeatWorkerAsync(uint worker, CancellationToken cancellationToken = default)
    {
        using var request = NewRequest(HttpMethod.Post, WorkerPath(worker) + "/heartbeat");
        return await SendForJsonAsync(request, ProtocolJson.Default.WorkerInfo, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deregisters a worker (<c>DELETE /v1/workers/{id}</c>): consistent pulls stop waiting for it at once.</summary>
    /// <exception cref="ParamDbException"><c>worker_not_found</c>.</exception>
    public async Task RemoveWorkerAsync(uint worker, CancellationToken cancellationToken = default)
    {
        using var request = NewRequest(HttpMethod.Delete, WorkerPath(worker));
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every registered worker, live or not (<c>GET /v1/workers</c>).</summary>
    public Task<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken = default) =>
        ListWorkersAsync(_base, cancellationToken);

    /// <summary>The workers node <paramref name="node"/> (a REST base address) knows of: in a cluster, each node's own copy.</summary>
    internal async Task<IReadOnlyList<WorkerInfo>> ListWorkersAsync(Uri node, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Get, node, "v1/workers");
        var list = await SendForJsonAsync(request, ProtocolJson.Default.WorkerList, cancellationToken).ConfigureAwait(false);
        return list.Workers;
    }

    private static string WorkerPath(uint worker) => "v1/workers/" + worker.ToString(CultureInfo.InvariantCulture);
}
