using System.Net;
using System.Text.Json;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Storage;
using ParamDb.Storage.Local;

namespace ParamDb.Cluster.Directories;

/// <summary>
/// The workers of a cluster: registrations, removals and lease expiries go through the server manager, so every
/// node counts the same workers under the same ids at the same time. Every node renews _leases from what reaches it
/// (a routed or clocked push reaches every node, a heartbeat is passed on to every node), without a consensus write
/// per heartbeat; the leader's leases decide: a worker whose lease ends there is removed from the cluster
/// (<see cref="WorkerRemovalReason.LeaseExpired"/>) and must register again.
/// </summary>
public sealed class ClusterWorkerDirectory : IWorkerDirectory
{
    private readonly ClusterMember _member;
    private readonly LocalWorkerDirectory _leases;

    /// <summary>Serves <paramref name="member"/>'s workers with <paramref name="leases"/>, which must not decide expiry itself.</summary>
    public ClusterWorkerDirectory(ClusterMember member, LocalWorkerDirectory leases)
    {
        _member = member;
        _leases = leases;
        leases.LeaseEnded += OnLeaseEnded;
    }

    /// <summary>On the leader, a lease that ended removes the worker from every node.</summary>
    private void OnLeaseEnded(uint worker)
    {
        if (!_member.Manager.IsLeader) return;
        _ = ExpireAsync(worker);
    }

    private async Task ExpireAsync(uint worker)
    {
        try
        {
            await _member.Manager.ProposeAsync(new RemoveWorker(worker, WorkerRemovalReason.LeaseExpired)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException or CommitUnknownException)
        {
            // Leadership moved: the new leader's own _leases report the worker within a second.
        }
    }

    /// <inheritdoc />
    public async ValueTask<WorkerState> RegisterAsync(string name, IReadOnlyList<string> tables, int leaseMs, CancellationToken cancellationToken)
    {
        uint id;
        try
        {
            if (_member.Manager.IsLeader)
            {
                CommandResult result = await _member.Manager.ProposeAsync(new RegisterWorker(name, tables, leaseMs), cancellationToken).ConfigureAwait(false);
                id = result.Id ?? throw new ArgumentException(result.Detail ?? $"The cluster refused worker '{name}' ({result.Outcome}).");
            }
            else
            {
                byte[] body = JsonSerializer.SerializeToUtf8Bytes(new WorkerRegistration { Name = name, Tables = [.. tables], LeaseMs = leaseMs }, ProtocolJson.Default.WorkerRegistration);
                using HttpResponseMessage response = await _member.ForwardToLeaderAsync(HttpMethod.Post, "/v1/workers", PeerHttp.Json(body), cancellationToken).ConfigureAwait(false);
                if (response.StatusCode != HttpStatusCode.Created) throw await ClusterTableDirectory.LeaderRefusedAsync(response, cancellationToken).ConfigureAwait(false);
                WorkerInfo info = JsonSerializer.Deserialize(await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false), ProtocolJson.Default.WorkerInfo)
                    ?? throw new InvalidDataException("The leader's registration reply is empty.");
                id = info.Worker;
                await _member.TryCatchUpAsync(cancellationToken).ConfigureAwait(false);   // the leader made the change: a failed catch-up must not report it unmade
            }
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException)
        {
            throw ClusterTableDirectory.NoLeader(e);
        }
        catch (CommitUnknownException e)
        {
            throw ClusterTableDirectory.CommitUnknown(e);
        }
        // Every node must know the worker before its first push, which a router sends on at once: each peer is
        // sent a heartbeat, and a peer that does not know the worker yet catches up with the manager first.
        await PassOnAsync(id, cancellationToken).ConfigureAwait(false);
        foreach (WorkerState state in _leases.List())
            if (state.Id == id) return state;
        throw new MetadataUnavailableException(new ProtocolError(503, ProblemCodes.Unavailable, $"Worker {id} was registered but has not reached this node yet; retry."), ClusterTableDirectory.RetryAfter);
    }

    /// <inheritdoc />
    public async ValueTask<WorkerState?> HeartbeatAsync(uint worker, CancellationToken cancellationToken)
    {
        WorkerState? state = await _leases.HeartbeatAsync(worker, cancellationToken).ConfigureAwait(false);
        if (state is not null) await PassOnAsync(worker, cancellationToken).ConfigureAwait(false);
        return state;
    }

    /// <summary>Passes a heartbeat on to every other node as a peer's (renewed there, not passed on again).</summary>
    private Task PassOnAsync(uint worker, CancellationToken cancellationToken)
    {
        var beats = new List<Task>();
        foreach (var (_, http) in _member.Others()) beats.Add(BeatAsync(http, worker, cancellationToken));
        return Task.WhenAll(beats);
    }

    private async Task BeatAsync(string http, uint worker, CancellationToken cancellationToken)
    {
        try
        {
            using HttpResponseMessage response = await _member.Peers.SendAsync(HttpMethod.Post, http, $"/v1/workers/{worker}/heartbeat", null, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            // A node that does not answer renews nothing; it will let the lease lapse there, and count the worker
            // again at its next push.
        }
    }

    /// <inheritdoc />
    public bool Touch(uint worker) => _leases.Touch(worker);

    /// <inheritdoc />
    public IReadOnlyList<WorkerState> List() => _leases.List();

    /// <inheritdoc />
    public async ValueTask<bool> RemoveAsync(uint worker, CancellationToken cancellationToken)
    {
        try
        {
            if (_member.Manager.IsLeader)
                return (await _member.Manager.ProposeAsync(new RemoveWorker(worker, WorkerRemovalReason.Deregistered), cancellationToken).ConfigureAwait(false)).Outcome == CommandOutcome.Applied;
            using HttpResponseMessage response = await _member.ForwardToLeaderAsync(HttpMethod.Delete, $"/v1/workers/{worker}", null, cancellationToken).ConfigureAwait(false);
            bool removed = response.StatusCode switch
            {
                HttpStatusCode.NoContent => true,
                HttpStatusCode.NotFound => false,
                _ => throw await ClusterTableDirectory.LeaderRefusedAsync(response, cancellationToken).ConfigureAwait(false),
            };
            await _member.TryCatchUpAsync(cancellationToken).ConfigureAwait(false);   // the leader made the change: a failed catch-up must not report it unmade
            return removed;
        }
        catch (Exception e) when (e is NoLeaderException or NotLeaderException)
        {
            throw ClusterTableDirectory.NoLeader(e);
        }
        catch (CommitUnknownException e)
        {
            throw ClusterTableDirectory.CommitUnknown(e);
        }
    }
}
