using System.Buffers;
using System.Diagnostics;
using ParamDb.Protocol;
using ParamDb.Storage;
using ParamDb.Storage.Transfer;

namespace ParamDb.Cluster.Replication;

/// <summary>
/// Sending a backup arcs whole (docs/replication.md, "Resync"): to a backup that is up, read while the table's
/// clocked pushes wait, so the copy's rows and clocks agree should the backup be promoted before the next batch; to a
/// joining one, read and sent in steps beside the pushes, at most <see cref="ClusterOptions.ResyncBytesPerSecond"/>.
/// </summary>
internal sealed partial class BackupStream
{
    /// <summary>
    /// Sends every table's arcs in <paramref name="tokens"/> whole to a backup that is up, read while the table's
    /// clocked pushes wait (so rows and clocks agree), in requests of at most <see cref="MaxRequestBytes"/>.
    /// </summary>
    private async Task<bool> ResyncAsync(List<ulong> tokens)
    {
        foreach (TableHandle table in _owner.Store.ListTables())
        {
            List<byte[]> requests;
            try
            {
                requests = _owner.Store.HoldClockedPushes(table, () => ReadWhole(table, tokens));
            }
            catch (ObjectDisposedException)
            {
                continue;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                _owner.Logger.ReplicationDeferred(NodeId, table.Name, e.Message);
                return false;
            }
            foreach (byte[] request in requests)
            {
                Failpoints.Hit(Failpoints.CatchUp);
                if (!await PostAsync(table, request).ConfigureAwait(false)) return false;
                _owner.CountSent(request.Length, resync: true);
            }
        }
        _owner.Logger.BackupResynced(NodeId, tokens.Count);
        return true;
    }

    private List<byte[]> ReadWhole(TableHandle table, List<ulong> tokens)
    {
        var requests = new List<byte[]>();
        var current = new ArrayBufferWriter<byte>();
        using RangeCopy copy = _owner.Store.CopyRanges(table, tokens);
        while (copy.TryReadNext(out ReadOnlyMemory<byte> batch))
        {
            if (current.WrittenCount > 0 && current.WrittenCount + batch.Length > MaxRequestBytes)
            {
                requests.Add(current.WrittenSpan.ToArray());
                current.ResetWrittenCount();
            }
            current.Write(batch.Span);
        }
        if (current.WrittenCount > 0) requests.Add(current.WrittenSpan.ToArray());
        return requests;
    }

    /// <summary>
    /// Sends every table's arcs in <paramref name="tokens"/> whole to a joining backup, one request at a time (an
    /// eighth of a second's bytes, at most <see cref="MaxRequestBytes"/>), read as it goes while pushes go on, paced
    /// to the configured rate.
    /// Pushes do not wait for the backup meanwhile (<see cref="Confirmation"/>), and the keys they touch wait here
    /// and go after the copy, read then: a row the copy read before a push changed it is sent again, newer, so no
    /// copied row is left older than the primary's. The copy's clocks were read when it began and may count fewer
    /// pushes than its rows hold; the batches after it carry the clocks of then, and the backup is counted caught up
    /// only once those are written.
    /// </summary>
    private async Task<bool> CatchUpAsync(List<ulong> tokens, CopyProgress progress)
    {
        long rate = _owner.Member.Options.ResyncBytesPerSecond, sent = 0;
        // Requests of an eighth of a second's bytes (64 KiB to 8 MiB), so the pacing is even: at 1 MiB/s one 8 MiB
        // request went at once and then the copy slept 8 s.
        int step = rate > 0 ? (int)Math.Clamp(rate / 8, 64 << 10, MaxRequestBytes) : MaxRequestBytes;
        var clock = Stopwatch.StartNew();
        // Two buffers: the next request is read while the last is on the wire and being written (one request in
        // flight, so the backup applies them in order).
        var filling = new PooledArrayWriter(step);
        var posting = new PooledArrayWriter(step);
        Task<bool>? inFlight = null;
        lock (_synced)
        {
            if (!progress.Copying.SequenceEqual(tokens)) progress.Copied.Clear();
            progress.Copying = tokens;
        }
        try
        {
            foreach (TableHandle table in _owner.Store.ListTables())
            {
                lock (_synced)
                {
                    if (progress.Copied.Contains(table)) continue;
                }
                try
                {
                    // A returning node first drops what it holds of these arcs: the copy then leaves it exactly what
                    // this node holds, not also a row a push wrote there before it died that no one acknowledged.
                    if (ReferenceEquals(progress, _joinCopy) && !await DropAsync(table, tokens).ConfigureAwait(false)) return false;
                    // A batch holds at least one record with every clock, however wide the rows.
                    int batchBytes = (int)Math.Max(Math.Min(step, ParamStore.TransferBatchBytes), _owner.Store.RecordsSize(table, 1));
                    using RangeCopy copy = _owner.Store.CopyRanges(table, tokens, batchBytes);
                    while (true)
                    {
                        bool more = copy.TryReadNext(out ReadOnlyMemory<byte> batch);
                        if (filling.WrittenCount > 0 && (!more || filling.WrittenCount + batch.Length > step))
                        {
                            if (!await SettleAsync().ConfigureAwait(false)) return false;
                            // Paced before each request: the copy may take no more of the machine than the rate allows.
                            if (rate > 0 && TimeSpan.FromSeconds((double)sent / rate) - clock.Elapsed is { Ticks: > 0 } ahead)
                                await Task.Delay(ahead, _stop.Token).ConfigureAwait(false);
                            await Failpoints.HitAsync(progress.Failpoint).AsTask().WaitAsync(_stop.Token).ConfigureAwait(false);
                            (filling, posting) = (posting, filling);
                            inFlight = PostAsync(table, posting.WrittenMemory);
                        }
                        if (!more) break;
                        filling.Write(batch.Span);
                    }
                    if (!await SettleAsync().ConfigureAwait(false)) return false;
                    lock (_synced) progress.Copied.Add(table);
                }
                catch (ObjectDisposedException)
                {
                    filling.Clear();   // the table was deleted
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    // The store's ranges changed, or the log was compacted under the copy: again from the start.
                    _owner.Logger.ReplicationDeferred(NodeId, table.Name, e.Message);
                    return false;
                }
            }
        }
        finally
        {
            // Never left on the wire: a copy started again must not be overtaken by a request of this one.
            if (inFlight is not null) await inFlight.ConfigureAwait(false);
            filling.Dispose();
            posting.Dispose();
        }
        _owner.Logger.BackupCaughtUp(NodeId, tokens.Count, sent, (long)clock.Elapsed.TotalMilliseconds);
        return true;

        async ValueTask<bool> SettleAsync()
        {
            if (inFlight is null) return true;
            bool written = await inFlight.ConfigureAwait(false);
            inFlight = null;
            if (!written) return false;
            _owner.CountSent(posting.WrittenCount, resync: true);
            sent += posting.WrittenCount;
            posting.Clear();
            return true;
        }
    }

    /// <summary>Drops the table's arcs in <paramref name="tokens"/> on the backup (<c>POST …/ranges/drop</c>); true once it is durable there.</summary>
    private async Task<bool> DropAsync(TableHandle table, List<ulong> tokens)
    {
        string? http = _owner.Member.Manager.State.Nodes.TryGetValue(NodeId, out var info) ? info.Http : null;
        if (http is null) return false;
        var json = new System.Text.StringBuilder("{\"tokens\":[", 24 * tokens.Count + 16);
        for (int i = 0; i < tokens.Count; i++)
            json.Append(i == 0 ? "\"" : ",\"").Append(tokens[i].ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('"');
        json.Append("]}");
        using var content = new StringContent(json.ToString(), System.Text.Encoding.UTF8, MediaTypes.Json);
        try
        {
            using HttpResponseMessage reply = await _owner.Member.Peers.SendAsync(HttpMethod.Post, http,
                $"/v1/tables/{Uri.EscapeDataString(table.Name)}/ranges/drop", content, _stop.Token).ConfigureAwait(false);
            if (reply.IsSuccessStatusCode) return true;
            _owner.Logger.ReplicationRefused(NodeId, table.Name, (int)reply.StatusCode, await reply.Content.ReadAsStringAsync(_stop.Token).ConfigureAwait(false));
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !_stop.IsCancellationRequested)
        {
            _owner.Logger.ReplicationFailed(NodeId, table.Name, e.Message);
            return false;
        }
    }

    /// <summary>
    /// Tables a catch-up under way has sent whole, for the arcs in <see cref="Copying"/> (under <c>_synced</c>'s
    /// lock): a copy that failed part-way (a table created meanwhile, a refused request) starts again from the first
    /// table it had not finished.
    /// </summary>
    /// <param name="failpoint">Hit before each request of the copy.</param>
    private sealed class CopyProgress(string failpoint)
    {
        public string Failpoint { get; } = failpoint;

        public HashSet<TableHandle> Copied { get; } = new(ReferenceEqualityComparer.Instance);

        public List<ulong> Copying { get; set; } = [];
    }
}
