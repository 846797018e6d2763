using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FASTER.core;
using ParamDb.Storage.Transfer;

namespace ParamDb.Storage;

/// <summary>Push and pull of row batches.</summary>
public sealed partial class ParamStore
{
    /// <summary>
    /// Pending operations a batch lets pile up before it waits for them: each holds a heap copy of its key and
    /// input, so 4,096 bound that to a few hundred KiB while keeping enough reads in flight to use the disk.
    /// </summary>
    private const int MaxPendingPerBatch = 4096;

    /// <summary>Folds pushed rows into the table with its updater; a new row starts at its initial value.</summary>
    /// <param name="table">The table.</param>
    /// <param name="keys">Row keys, strictly ascending (validated by the caller).</param>
    /// <param name="values">Row-major, <c>keys.Length × Dim</c> floats.</param>
    /// <param name="stamp">The pushing worker and its clock: with both, the push is exactly-once per range and
    /// advances the worker's clock on every range of the table (docs/consistency.md).</param>
    /// <param name="rangesVersion">The <see cref="RangesVersion"/> the keys were sliced against: if the ranges have
    /// changed since, nothing is applied (<see cref="PushStatus.RangesChanged"/>). 0: not checked.</param>
    public PushOutcome Push(TableHandle table, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values, WorkerStamp stamp = default, long rangesVersion = 0)
    {
        CheckBatch(table, keys.Length, values.Length, nameof(values));
        return ApplyPush(table, new BatchKeys(keys), values, stamp, rangesVersion);
    }

    /// <summary>Like <see cref="Push"/> for the keys <c>first … first+count-1</c>.</summary>
    public PushOutcome PushRange(TableHandle table, ulong first, int count, ReadOnlySpan<float> values, WorkerStamp stamp = default, long rangesVersion = 0)
    {
        CheckBatch(table, count, values.Length, nameof(values));
        CheckRange(first, count);
        return ApplyPush(table, new BatchKeys(first, count), values, stamp, rangesVersion);
    }

    /// <summary>
    /// Reads rows: <c>Dim</c> floats each, never the optimizer state. A row never pushed reads as its initial value
    /// and is not stored.
    /// </summary>
    /// <param name="table">The table.</param>
    /// <param name="keys">Row keys.</param>
    /// <param name="destination">Row-major, <c>keys.Length × Dim</c> floats.</param>
    public void Pull(TableHandle table, ReadOnlySpan<ulong> keys, Span<float> destination)
    {
        CheckBatch(table, keys.Length, destination.Length, nameof(destination));
        ReadRows(table, new BatchKeys(keys), destination);
    }

    /// <summary>Like <see cref="Pull"/> for the keys <c>first … first+count-1</c>.</summary>
    public void PullRange(TableHandle table, ulong first, int count, Span<float> destination)
    {
        CheckBatch(table, count, destination.Length, nameof(destination));
        CheckRange(first, count);
        ReadRows(table, new BatchKeys(first, count), destination);
    }

    /// <summary>
    /// Applies one validated push batch: one RMW per row, inside a push-gate section so a checkpoint holds all
    /// of the batch or none of it. The single place every push goes through, live or replayed: the
    /// write-ahead log appends the batch here, before the first RMW. A stamp must name a registered worker (its
    /// directory renews the lease: the data plane touches it before the push).
    /// </summary>
    internal unsafe PushOutcome ApplyPush(TableHandle table, BatchKeys keys, ReadOnlySpan<float> values, WorkerStamp stamp, long rangesVersion = 0)
    {
        if (stamp.Worker != 0 && !_registry.TryGet(stamp.Worker, out _)) return new PushOutcome(PushStatus.WorkerNotFound, 0);
        fixed (ulong* k = keys.Explicit)
        fixed (float* v = values)
        {
            var batch = new PinnedBatch(table, keys.IsRange, keys.First, k, v, keys.Count);
            if (stamp.IsClocked)
            {
                long applied = ApplyClocked(table, batch, stamp, keys, values, rangesVersion, out Task? logged);
                return applied < 0 ? new PushOutcome(PushStatus.RangesChanged, 0) : new PushOutcome(PushStatus.Ok, applied, logged);
            }
            if (keys.Count == 0) return new PushOutcome(PushStatus.Ok, 0);
            Task? durable;
            _pushGate.EnterReadLock();
            try
            {
                if (rangesVersion != 0 && rangesVersion != _rangesVersion) return new PushOutcome(PushStatus.RangesChanged, 0);
                durable = LogPush(table, keys, values, stamp);
                if (durable is { IsFaulted: true }) return new PushOutcome(PushStatus.Ok, 0, durable);   // the log refused it
                RunChunks<PushRow>(batch);
                Tap(table, keys, clocked: false);
            }
            finally
            {
                _pushGate.ExitReadLock();
            }
            return new PushOutcome(PushStatus.Ok, keys.Count, durable);
        }
    }

    /// <summary>Who is told of applied pushes (<see cref="IPushTap"/>): a cluster primary's replicator; null on a single node.</summary>
    public IPushTap? PushTap
    {
        get => Volatile.Read(ref _pushTap);
        set => Volatile.Write(ref _pushTap, value);
    }

    private IPushTap? _pushTap;

    private void Tap(TableHandle table, BatchKeys keys, bool clocked)
    {
        if (Volatile.Read(ref _pushTap) is not { } tap) return;
        if (keys.IsRange) tap.AppliedRange(table, keys.First, keys.Count, clocked);
        else tap.Applied(table, keys.Explicit, clocked);
    }

    private unsafe void ReadRows(TableHandle table, BatchKeys keys, Span<float> destination)
    {
        if (keys.Count == 0) return;
        fixed (ulong* k = keys.Explicit)
        fixed (float* d = destination)
        {
            RunChunks<PullRow>(new PinnedBatch(table, keys.IsRange, keys.First, k, d, keys.Count));
        }
    }

    /// <summary>
    /// Runs a batch in one piece, or, when it is large, in one chunk per core, each with its own session.
    /// A FASTER session does ~1 M operations/s, so a 4,096-row push on one thread is bound by it; chunks of at
    /// least <see cref="MinRowsPerChunk"/> rows keep the fork cost (~10 µs) under 1 % of the work.
    /// The caller keeps the batch's buffers pinned until this returns.
    /// </summary>
    private void RunChunks<TOp>(PinnedBatch batch) where TOp : struct, IRowOperation
    {
        int parts = Math.Min(Environment.ProcessorCount, batch.Count / MinRowsPerChunk);
        if (parts <= 1)
        {
            RunChunk<TOp>(batch, 0, batch.Count);
            return;
        }
        try
        {
            Parallel.For(0, parts, part => RunChunk<TOp>(batch, (int)((long)batch.Count * part / parts), (int)((long)batch.Count * (part + 1) / parts)));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            // Surface the first failure as the sequential path would.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
    }

    /// <summary>Rows below which a batch is not split across cores.</summary>
    private const int MinRowsPerChunk = 1024;

    /// <summary>
    /// Rows <paramref name="from"/> … <paramref name="to"/>-1 of a batch in one rented session, one
    /// <typeparamref name="TOp"/> per row. <typeparamref name="TOp"/> is a struct, so the JIT compiles one loop per
    /// operation with no branch on it (a shared loop with a push/pull flag measured ~20 % slower pulls). The
    /// session goes back to the pool only after CompletePending(wait: true) returned: pending operations hold
    /// pointers into the pinned batch. A write holds its key's <see cref="RowLatches"/> stripe until it is complete.
    /// </summary>
    private unsafe void RunChunk<TOp>(PinnedBatch batch, int from, int to) where TOp : struct, IRowOperation
    {
        TableHandle table = batch.Table;
        int stride = batch.Stride;
        RowSession session = _sessions.Rent();
        var held = new HeldLatches(TOp.Writes ? _latches : null);
        bool reusable = false;
        try
        {
            var input = new RowInput(table);
            RowOutput output = default;
            int pending = 0;
            for (int i = from; i < to; i++)
            {
                var key = new RowKey(table.Id, batch.KeyAt(i));
                int stripe = 0;
                bool taken = false;
                if (TOp.Writes && !held.TryEnter(stripe = RowLatches.StripeOf(key), out taken))
                {
                    // Another thread writes this bucket: finish and release ours before waiting (RowLatches).
                    session.CompletePending(wait: true);
                    pending = 0;
                    held.ExitAll();
                    held.Enter(stripe);
                    taken = true;
                }
                Status status = TOp.Run(session, ref key, ref input, ref output, batch.Floats + (long)i * stride);
                if (status.IsPending)
                {
                    if (taken) held.Keep(stripe);   // released once the write completes
                    if (++pending == MaxPendingPerBatch)
                    {
                        session.CompletePending(wait: true);
                        pending = 0;
                        held.ExitAll();
                    }
                }
                else if (taken)
                {
                    held.Exit(stripe);
                }
            }
            session.CompletePending(wait: true);
            reusable = true;
        }
        finally
        {
            if (reusable) _sessions.Return(session);
            else DiscardSession(session);
            held.Dispose();   // after the session's pending writes are done
        }
    }

    /// <summary>
    /// A batch failed part-way. Wait out its pending operations while the buffers are still pinned, then drop
    /// the session rather than pool it in an unknown state.
    /// </summary>
    private static void DiscardSession(RowSession session)
    {
        try
        {
            session.CompletePending(wait: true);
        }
        catch (Exception e) when (e is IOException or FasterException)
        {
            // Already failing; the first exception is the one the caller sees.
        }
        session.Dispose();
    }

    private void CheckBatch(TableHandle table, int rows, int floats, string paramName)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if ((long)rows * table.Dim != floats) ThrowHelper.ValuesLength(paramName, (long)rows * table.Dim, floats);
    }

    private static void CheckRange(ulong first, int count)
    {
        if (count > 0 && first > ulong.MaxValue - (ulong)(count - 1)) ThrowHelper.RangeOverflow(first, count);
    }
}

/// <summary>The keys of a batch: an explicit ascending list, or the range <c>first … first+count-1</c>.</summary>
[StructLayout(LayoutKind.Auto)]
internal readonly ref struct BatchKeys
{
    private readonly ReadOnlySpan<ulong> _keys;
    private readonly ulong _first;

    public BatchKeys(ReadOnlySpan<ulong> keys)
    {
        _keys = keys;
        Count = keys.Length;
        IsRange = false;
    }

    public BatchKeys(ulong first, int count)
    {
        _first = first;
        Count = count;
        IsRange = true;
    }

    public int Count { get; }

    public bool IsRange { get; }

    /// <summary>The explicit keys; empty for a range.</summary>
    public ReadOnlySpan<ulong> Explicit => _keys;

    /// <summary>The first key of a range.</summary>
    public ulong First => _first;

    public ulong this[int i]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => IsRange ? _first + (ulong)i : _keys[i];
    }
}

/// <summary>
/// A batch whose key and float buffers the caller has pinned, as raw pointers so it can cross to the worker
/// threads of <see cref="ParamStore"/>'s chunked batches. Floats are the pushed values or the pull destination.
/// </summary>
internal readonly unsafe struct PinnedBatch(TableHandle table, bool isRange, ulong first, ulong* keys, float* floats, int count)
{
    public TableHandle Table { get; } = table;
    public float* Floats { get; } = floats;
    public int Count { get; } = count;

    /// <summary>Floats from one row's data to the next: dim, or a whole record's payload for transferred records.</summary>
    public int Stride { get; init; } = table.Dim;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong KeyAt(int i) => isRange ? first + (ulong)i : keys[i];
}

/// <summary>What a batch does to one row; implemented by structs so each batch loop is specialised.</summary>
internal unsafe interface IRowOperation
{
    /// <summary>Whether the operation writes the row, and so must hold the row's <see cref="RowLatches"/> stripe.</summary>
    static abstract bool Writes { get; }

    /// <summary>Starts the operation on <paramref name="row"/> (the pushed values, or where the pulled row goes).</summary>
    static abstract Status Run(RowSession session, ref RowKey key, ref RowInput input, ref RowOutput output, float* row);
}

/// <summary>A push: RMW with the table's updater.</summary>
internal readonly unsafe struct PushRow : IRowOperation
{
    public static bool Writes => true;

    public static Status Run(RowSession session, ref RowKey key, ref RowInput input, ref RowOutput output, float* row)
    {
        input.Values = row;
        return session.RMW(ref key, ref input, ref output);
    }
}

/// <summary>A pull: Read into the destination; a row never pushed reads as its initial value and is not stored.</summary>
internal readonly unsafe struct PullRow : IRowOperation
{
    public static bool Writes => false;

    public static Status Run(RowSession session, ref RowKey key, ref RowInput input, ref RowOutput output, float* row)
    {
        output.Destination = row;
        Status status = session.Read(ref key, ref input, ref output);
        // A pending read is finished, found or not, by RowFunctions.ReadCompletionCallback.
        if (!status.IsPending && !status.Found) input.Table._initializer.Fill(key.Key, new Span<float>(row, input.Table.Dim));
        return status;
    }
}
