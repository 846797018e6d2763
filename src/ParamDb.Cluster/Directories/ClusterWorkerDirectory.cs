using System.Net;
using System.Text.Json;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Storage;
using ParamDb.Storage.Local;

namespace ParamDb.Cluster.Directories;

/// <summary>
/// The workers of a cluster: registrations and removals go through the server manager, so every node counts the
/// same workers under the same ids. Leases are kept on each node (<paramref name="leases"/>), renewed by what
/// reaches that node: a routed push reaches every node, and a heartbeat is passed on to every node, so the nodes
/// see a worker leave at about the same time without a consensus write per heartbeat.
/// </summary>
/// <param name="member">This node's place in the cluster.</param>
/// <param name="leases">This node's leases over its store's mirrored workers.</param>
public sealed class ClusterWorkerDirectory(ClusterMember member, LocalWorkerDirectory leases) : IWorkerDirectory
{
    /// <inheritdoc />
    public async ValueTask<WorkerState> RegisterAsync(string name, IReadOnlyList<string> tables, int leaseMs, CancellationToken cancellationToken)
    {
        uint id;
        try
        {
            if (member.Manager.IsLeader)
            {
                CommandResult result = await member.Manager.ProposeAsync(new RegisterWorker(name, tables, leaseMs), cancellationToken).ConfigureAwait(false);
                id = result.Id ?? throw new ArgumentException(result.Detail ?? $"The cluster refused worker '{name}' ({result.Outcome}).");
            }
            else
            {
                byte[] body = JsonSerializer.SerializeToUtf8Bytes(new WorkerRegistration { Name = name, Tables = [.. tables], LeaseMs = leaseMs }, ProtocolJson.Default.WorkerRegistration);
                using HttpResponseMessage response = await member.ForwardToLeaderAsync(HttpMethod.Post, "/v1/workers", PeerHttp.Json(body), cancellationToken).ConfigureAwait(false);
                if (response.StatusCode != HttpStatusCode.Created) throw await ClusterTableDirectory.LeaderRefusedAsync(response, cancellationToken).ConfigureAwait(false);
                WorkerInfo info = JsonSerializer.Deserialize(await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false), ProtocolJson.Default.WorkerInfo)
                    ?? throw new InvalidDataException("The leader's registration reply is empty.");
                id = info.Worker;
                await member.Manager.ReadBarrierAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException)
        {
            throw ClusterTableDirectory.NoLeader(e);
        }
        // Every node must know the worker before its first push, which a router sends on at once: each peer is
        // sent a heartbeat, and a peer that does not know the worker yet catches up with the manager first.
        await PassOnAsync(id, cancellationToken).ConfigureAwait(false);
        foreach (WorkerState state in leases.List())
            if (state.Id == id) return state;
        throw new MetadataUnavailableException(new ProtocolError(503, ProblemCodes.Unavailable, $"Worker {id} was registered but has not reached this node yet; retry."), ClusterTableDirectory.RetryAfter);
    }

    /// <inheritdoc />
    public async ValueTask<WorkerState?> HeartbeatAsync(uint worker, CancellationToken cancellationToken)
    {
        WorkerState? state = await leases.HeartbeatAsync(worker, cancellationToken).ConfigureAwait(false);
        if (state is not null) await PassOnAsync(worker, cancellationToken).ConfigureAwait(false);
        return state;
    }

    /// <summary>Passes a heartbeat on to every other node as a peer's (renewed there, not passed on again).</summary>
    private Task PassOnAsync(uint worker, CancellationToken cancellationToken)
    {
        var beats = new List<Task>();
        foreach (var (_, http) in member.Others()) beats.Add(BeatAsync(http, worker, cancellationToken));
        return Task.WhenAll(beats);
    }

    private async Task BeatAsync(string http, uint worker, CancellationToken cancellationToken)
    {
        try
        {
            using HttpResponseMessage response = await member.Peers.SendAsync(HttpMethod.Post, http, $"/v1/workers/{worker}/heartbeat", null, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            // A node that does not answer renews nothing; it will let the lease lapse there, and count the worker
            // again at its next push.
        }
    }

    /// <inheritdoc />
    public bool Touch(uint worker) => leases.Touch(worker);

    /// <inheritdoc />
    public IReadOnlyList<WorkerState> List() => leases.List();

    /// <inheritdoc />
    public async ValueTask<bool> RemoveAsync(uint worker, CancellationToken cancellationToken)
    {
        try
        {
            if (member.Manager.IsLeader)
                return (await member.Manager.ProposeAsync(new RemoveWorker(worker, WorkerRemovalReason.Deregistered), cancellationToken).ConfigureAwait(false)).Outcome == CommandOutcome.Applied;
            using HttpResponseMessage response = await member.ForwardToLeaderAsync(HttpMethod.Delete, $"/v1/workers/{worker}", null, cancellationToken).ConfigureAwait(false);
            bool removed = response.StatusCode switch
            {
                HttpStatusCode.NoContent => true,
                HttpStatusCode.NotFound => false,
                _ => throw await ClusterTableDirectory.LeaderRefusedAsync(response, cancellationToken).ConfigureAwait(false),
            };
            await member.Manager.ReadBarrierAsync(cancellationToken).ConfigureAwait(false);
            return removed;
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException)
        {
            throw ClusterTableDirectory.NoLeader(e);
        }
    }
}
