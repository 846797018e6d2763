using System.Runtime.CompilerServices;
using ParamDb.Client.Internal;
using ParamDb.Protocol;
using static ParamDb.Client.Internal.BatchChecks;

namespace ParamDb.Client;

// Push and pull, stamped with (Id, Clock). A batch is parallel arrays as in ps-lite: keys strictly ascending,
// values keys.Length × dim floats row-major. The buffers are the caller's until the task completes.
public sealed partial class ParamDbWorker
{
    /// <summary>
    /// Pushes one row per key at the current clock; the table's updater folds each into the stored row. The
    /// table's one push for this clock (see the class remarks).
    /// </summary>
    /// <param name="table">Table name.</param>
    /// <param name="keys">Strictly ascending keys; read when sent, so unchanged until the task completes.</param>
    /// <param name="values">keys.Length × dim floats, row-major; likewise.</param>
    /// <param name="options">Compression or timeout for this call.</param>
    /// <param name="cancellationToken">Cancels the call (a push already sent may still be applied).</param>
    /// <returns>Rows received and applied; applied is less than rows when the server had already seen this clock.</returns>
    /// <exception cref="InvalidOperationException">This table was already pushed at this clock.</exception>
    /// <exception cref="ArgumentException">Keys not strictly ascending, or values not a whole number of rows.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>worker_not_found</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PushResult> PushAsync(string table, ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values,
        ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        ulong clock = Claim(table);
        try
        {
            if (RoutingMap() is { } map)
            {
                CheckName(table);
                CheckAscending(keys.Span);
                int dim = RowWidth(keys.Length, values.Length, nameof(values));
                BlockSize(range: false, keys.Length, dim, values: true);
                RoutedPush pushed = await PushRoutedAsync(map, table, Batch.OfKeys(keys, values, default, dim), new ClockStamp(Id, clock), options, cancellationToken).ConfigureAwait(false);
                return pushed.Result;
            }
            return await _stream.PushAsync(table, keys, values, new ClockStamp(Id, clock), options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Unclaim(table, clock);
            throw;
        }
    }

    /// <summary>Pushes the dense range of rows first … first + values.Length / dim - 1 at the current clock (the table's one push for it).</summary>
    /// <exception cref="InvalidOperationException">This table was already pushed at this clock.</exception>
    /// <exception cref="ArgumentException">Values not a whole number of rows, or the range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>key_out_of_range</c>…</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PushResult> PushRangeAsync(string table, ulong first, ReadOnlyMemory<float> values, int dim,
        ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        ulong clock = Claim(table);
        try
        {
            if (RoutingMap() is { } map)
            {
                CheckName(table);
                int count = RowCount(values.Length, dim, nameof(values));
                CheckRange(first, count);
                BlockSize(range: true, count, dim, values: true);
                RoutedPush pushed = await PushRoutedAsync(map, table, Batch.OfRange(first, count, values, default, dim), new ClockStamp(Id, clock), options, cancellationToken).ConfigureAwait(false);
                return pushed.Result;
            }
            return await _stream.PushRangeAsync(table, first, values, dim, new ClockStamp(Id, clock), options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Unclaim(table, clock);
            throw;
        }
    }

    /// <summary>
    /// Pulls the rows of <paramref name="keys"/> into <paramref name="destination"/> (keys.Length × dim floats) at the
    /// current clock, waiting as the consistency asks (the call's, else the worker's default).
    /// </summary>
    /// <param name="table">Table name.</param>
    /// <param name="keys">Strictly ascending keys.</param>
    /// <param name="destination">Filled in place when the reply arrives (ps-lite's ZPull): do not read or reuse it before
    /// the task completes; after a failure its contents are unspecified.</param>
    /// <param name="options">Consistency, compression or timeout for this call.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The minimum clock of the ranges read.</returns>
    /// <exception cref="ArgumentException">Keys not strictly ascending, or the destination not a whole number of rows.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>clock_wait_timeout</c> (its
    /// <see cref="ParamDbException.Problem"/> names the workers behind)…</exception>
    public ValueTask<PullResult> PullAsync(string table, ReadOnlyMemory<ulong> keys, Memory<float> destination,
        ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        if (keys.Length == 0 || RoutingMap() is not { } map) return _stream.PullAsync(table, keys, destination, Stamp(), WithConsistency(options), cancellationToken);
        return PullKeysRoutedAsync(map, table, keys, destination, Stamp(), WithConsistency(options), cancellationToken);
    }

    /// <summary>Pulls the rows of <paramref name="keys"/> into a new array at the table's dim, at the current clock.</summary>
    /// <exception cref="ArgumentException">Keys not strictly ascending.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>clock_wait_timeout</c>…</exception>
    public ValueTask<float[]> PullAsync(string table, ReadOnlyMemory<ulong> keys,
        ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        if (keys.Length == 0 || RoutingMap() is not { } map) return _stream.PullAsync(table, keys, Stamp(), WithConsistency(options), cancellationToken);
        return PullNewRoutedAsync(map, table, Batch.OfKeys(keys, default, default, 0), Stamp(), WithConsistency(options), cancellationToken, ascending: true);
    }

    /// <summary>Pulls the dense range of rows first … first + count - 1 into <paramref name="destination"/>, at the current clock.</summary>
    /// <exception cref="ArgumentException">The destination is not count × dim floats, or the range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>dim_mismatch</c>, <c>clock_wait_timeout</c>…</exception>
    public ValueTask<PullResult> PullRangeAsync(string table, ulong first, int count, Memory<float> destination,
        ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        if (count <= 0 || RoutingMap() is not { } map) return _stream.PullRangeAsync(table, first, count, destination, Stamp(), WithConsistency(options), cancellationToken);
        return PullRangeRoutedAsync(map, table, first, count, destination, Stamp(), WithConsistency(options), cancellationToken);
    }

    /// <summary>Pulls the dense range of rows first … first + count - 1 into a new array at the table's dim, at the current clock.</summary>
    /// <exception cref="ArgumentException">The range runs past 2^64 - 1.</exception>
    /// <exception cref="ParamDbException"><c>table_not_found</c>, <c>clock_wait_timeout</c>…</exception>
    public ValueTask<float[]> PullRangeAsync(string table, ulong first, int count,
        ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        if (count <= 0 || RoutingMap() is not { } map) return _stream.PullRangeAsync(table, first, count, Stamp(), WithConsistency(options), cancellationToken);
        return PullNewRoutedAsync(map, table, Batch.OfRange(first, count, default, default, 0), Stamp(), WithConsistency(options), cancellationToken, ascending: false);
    }

    /// <summary>
    /// Pushes <paramref name="values"/> and pulls the same keys into <paramref name="destination"/>, sent back to back
    /// (ps-lite's PushPull): the pull sees the push. The push is the table's one push for this clock.
    /// </summary>
    /// <exception cref="InvalidOperationException">This table was already pushed at this clock.</exception>
    /// <exception cref="ArgumentException">Keys not ascending, or values/destination not keys.Length × dim.</exception>
    /// <exception cref="ParamDbException">The push's or the pull's refusal.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PushPullResult> PushPullAsync(string table, ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values, Memory<float> destination,
        ParamDbCallOptions options = default, CancellationToken cancellationToken = default)
    {
        ulong clock = Claim(table);
        try
        {
            if (keys.Length > 0 && RoutingMap() is { } map) return await PushPullRoutedAsync(map, table, keys, values, destination, new ClockStamp(Id, clock), options, cancellationToken).ConfigureAwait(false);
            return await _stream.PushPullAsync(table, keys, values, destination, new ClockStamp(Id, clock), WithConsistency(options), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Unclaim(table, clock);
            throw;
        }
    }

    private async ValueTask<PullResult> PullKeysRoutedAsync(ClusterMap map, string table, ReadOnlyMemory<ulong> keys, Memory<float> destination,
        ClockStamp stamp, ParamDbCallOptions options, CancellationToken cancellationToken)
    {
        CheckAscending(keys.Span);
        int dim = RowWidth(keys.Length, destination.Length, nameof(destination));
        return await PullRoutedAsync(map, table, Batch.OfKeys(keys, default, destination, dim), stamp, options, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<PullResult> PullRangeRoutedAsync(ClusterMap map, string table, ulong first, int count, Memory<float> destination,
        ClockStamp stamp, ParamDbCallOptions options, CancellationToken cancellationToken)
    {
        CheckRange(first, count);
        int dim = RowWidth(count, destination.Length, nameof(destination));
        return await PullRoutedAsync(map, table, Batch.OfRange(first, count, default, destination, dim), stamp, options, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<float[]> PullNewRoutedAsync(ClusterMap map, string table, Batch batch, ClockStamp stamp, ParamDbCallOptions options,
        CancellationToken cancellationToken, bool ascending)
    {
        if (ascending) CheckAscending(batch.Keys.Span);
        else CheckRange(batch.First, batch.Count);
        return await PullNewRoutedAsync(map, table, batch, stamp, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A push and a pull of the same keys in a cluster: every node's push slice (or tick) is queued before its pull
    /// slice, so each node's pull sees its push. When part of the push had to be sent again after a 421, the pull is
    /// made again once the push is done, so that it still sees the whole push.
    /// </summary>
    private async ValueTask<PushPullResult> PushPullRoutedAsync(ClusterMap map, string table, ReadOnlyMemory<ulong> keys, ReadOnlyMemory<float> values,
        Memory<float> destination, ClockStamp stamp, ParamDbCallOptions options, CancellationToken cancellationToken)
    {
        if (destination.Length != values.Length)
            throw new ArgumentException($"The destination holds {destination.Length} floats; the pushed rows are {values.Length}.", nameof(destination));
        CheckName(table);
        CheckAscending(keys.Span);
        int dim = RowWidth(keys.Length, values.Length, nameof(values));
        BlockSize(range: false, keys.Length, dim, values: true);
        ParamDbCallOptions pullOptions = WithConsistency(options);
        Task<RoutedPush> push = PushRoutedAsync(map, table, Batch.OfKeys(keys, values, default, dim), stamp, options, cancellationToken);
        ValueTask<PullResult> pull = PullRoutedAsync(map, table, Batch.OfKeys(keys, default, destination, dim), stamp, pullOptions, cancellationToken);
        RoutedPush pushed;
        try
        {
            pushed = await push.ConfigureAwait(false);
        }
        catch
        {
            try
            {
                await pull.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The push's failure is the one to report.
            }
            throw;
        }
        PullResult pulled = await pull.ConfigureAwait(false);
        if (pushed.Retried)
            pulled = await PullRoutedAsync(_ring.Current is { RoutesStream: true } newer ? newer : map, table, Batch.OfKeys(keys, default, destination, dim), stamp, pullOptions, cancellationToken).ConfigureAwait(false);
        return new PushPullResult(pushed.Result, pulled);
    }

    private ClockStamp Stamp()
    {
        lock (_clockLock) return new ClockStamp(Id, _clock);
    }

    private ParamDbCallOptions WithConsistency(in ParamDbCallOptions options) =>
        options.Consistency is null ? options with { Consistency = _consistency } : options;

    /// <summary>Takes the table's one push at the current clock and returns that clock.</summary>
    private ulong Claim(string table)
    {
        ArgumentNullException.ThrowIfNull(table);
        lock (_clockLock)
        {
            bool taken;
            if (_tableIndex.TryGetValue(table, out int i))
            {
                taken = _pushed[i];
                _pushed[i] = true;
            }
            else
            {
                taken = !_pushedUnregistered.Add(table);
            }
            if (taken)
            {
                throw new InvalidOperationException(
                    $"Table '{table}' was already pushed at clock {_clock}: the server keeps one push per worker, table and clock " +
                    "and would skip a second. Merge the batches, or call EndIterationAsync between them.");
            }
            return _clock;
        }
    }

    /// <summary>A push that failed gives its table back, if the clock has not moved on: pushing again is safe (exactly-once).</summary>
    private void Unclaim(string table, ulong clock)
    {
        lock (_clockLock)
        {
            if (_clock != clock) return;
            if (_tableIndex.TryGetValue(table, out int i)) _pushed[i] = false;
            else _pushedUnregistered.Remove(table);
        }
    }
}
