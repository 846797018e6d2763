using System.Diagnostics;
using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Membership;
using ParamDb.Storage;

namespace ParamDb.Cluster.Liveness;

/// <summary>
/// This node's lease (docs/replication.md, "Leases"): every <see cref="ClusterOptions.HeartbeatInterval"/> it sends
/// the leader a heartbeat, and each one the leader grants lets it act as a primary until
/// <see cref="ClusterOptions.LeaseDuration"/> after it was <i>sent</i>. The leader declares a node down only after
/// <see cref="ClusterOptions.DownAfter"/> (twice the lease) without hearing one, so by then the node's lease has
/// lapsed and it has stopped answering for its ranges: no two primaries of a range acknowledge at once.
/// </summary>
public sealed class NodeLease : IAsyncDisposable
{
    private readonly ClusterMember _member;
    private readonly FailureDetector _detector;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _expires;   // Stopwatch timestamp
    private long _lapsedAt;   // Stopwatch timestamp of when it was found lapsed; 0 while held
    private bool _mismatchLogged;

    internal NodeLease(ClusterMember member, FailureDetector detector, ILogger logger)
    {
        _member = member;
        _detector = detector;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Whether this node may act as a primary now: a heartbeat it sent less than a lease ago was granted.</summary>
    public bool IsHeld => Stopwatch.GetTimestamp() < Volatile.Read(ref _expires);

    /// <summary>How long the lease has left; zero when it has lapsed.</summary>
    public TimeSpan Remaining
    {
        get
        {
            long left = Volatile.Read(ref _expires) - Stopwatch.GetTimestamp();
            return left <= 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(0, left);
        }
    }

    /// <summary>Completes when the lease is held, or after <paramref name="timeout"/>; true when it is held.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!IsHeld)
        {
            if (Stopwatch.GetTimestamp() >= deadline) return false;
            await Task.Delay(_member.Options.HeartbeatInterval / 4, cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    private async Task RunAsync()
    {
        ClusterOptions options = _member.Options;
        using var timer = new PeriodicTimer(options.HeartbeatInterval);
        try
        {
            do
            {
                long sent = Stopwatch.GetTimestamp();
                if (await RenewAsync(options.LeaseDuration).ConfigureAwait(false))
                {
                    Extend(sent + (long)(options.LeaseDuration.TotalSeconds * Stopwatch.Frequency));
                    if (_lapsedAt != 0) _logger.LeaseRegained(_member.Identity.NodeId, Stopwatch.GetElapsedTime(_lapsedAt).TotalMilliseconds);
                    _lapsedAt = 0;
                }
                else if (!IsHeld && _lapsedAt == 0)
                {
                    _lapsedAt = Stopwatch.GetTimestamp();
                    _logger.LeaseLapsed(_member.Identity.NodeId);
                    Failpoints.Hit(Failpoints.LeaseLapse);
                }
            }
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private void Extend(long until)
    {
        long current = Volatile.Read(ref _expires);
        while (until > current)
        {
            long seen = Interlocked.CompareExchange(ref _expires, until, current);
            if (seen == current) return;
            current = seen;
        }
    }

    /// <summary>
    /// One heartbeat: granted by this node itself when it leads, else by the leader over HTTP. A grant counts only
    /// once this node has applied the ring epoch it was granted at.
    /// </summary>
    private async Task<bool> RenewAsync(TimeSpan timeout)
    {
        ServerManager manager = _member.Manager;
        string self = _member.Identity.NodeId;
        var (reportEpoch, caughtUp) = _member.CaughtUpReport?.Invoke() ?? (0, []);
        if (manager.IsLeader) return _detector.Grant(self, out ulong own, (reportEpoch, caughtUp)) && Current(own);
        if (manager.LeaderHttp is not { } leader) return false;
        // The leader refuses a node whose --down-after differs from its own (409 down_after_mismatch): a longer
        // lease than the leader assumes could outlive its down declaration.
        string path = $"{HeartbeatPath}?downAfter={((long)_member.Options.DownAfter.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        if (caughtUp.Count > 0)
            path += $"&epoch={reportEpoch.ToString(System.Globalization.CultureInfo.InvariantCulture)}&caughtUp={Uri.EscapeDataString(string.Join(',', caughtUp))}";
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        deadline.CancelAfter(timeout);
        try
        {
            using HttpResponseMessage reply = await _member.Peers.SendAsync(HttpMethod.Post, leader, path, null, deadline.Token).ConfigureAwait(false);
            if (reply.StatusCode == System.Net.HttpStatusCode.Conflict && !_mismatchLogged)
            {
                _mismatchLogged = true;
                _logger.LeaseRefused(_member.Identity.NodeId, await reply.Content.ReadAsStringAsync(deadline.Token).ConfigureAwait(false));
            }
            return reply.IsSuccessStatusCode
                && reply.Headers.TryGetValues(Protocol.ParamDbHeaders.RingEpoch, out IEnumerable<string>? values)
                && ulong.TryParse(values?.FirstOrDefault(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong epoch)
                && Current(epoch);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !_stop.IsCancellationRequested)
        {
            return false;
        }
    }

    private bool Current(ulong grantedAt) => _member.Ring is { } ring && ring.Epoch >= grantedAt;

    /// <summary>The leader's heartbeat route; the sender names itself in <c>ParamDb-Peer</c>.</summary>
    public const string HeartbeatPath = "/v1/cluster/heartbeats";

    /// <summary>Stops renewing; the lease lapses on its own.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
