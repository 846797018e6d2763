using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FASTER.core;

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
    public void Push(TableHandle table, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values)
    {
        CheckBatch(table, keys.Length, values.Length, nameof(values));
        ApplyPush(table, new BatchKeys(keys), values);
    }

    /// <summary>Like <see cref="Push"/> for the keys <c>first … first+count-1</c>.</summary>
    public void PushRange(TableHandle table, ulong first, int count, ReadOnlySpan<float> values)
    {
        CheckBatch(table, count, values.Length, nameof(values));
        CheckRange(first, count);
        ApplyPush(table, new BatchKeys(first, count), values);
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
    /// Applies one validated push batch: one RMW per row, in one rented session. The single place every push
    /// goes through, so the write-ahead log (a later issue) appends the batch here, before the first RMW.
    /// </summary>
    internal unsafe void ApplyPush(TableHandle table, BatchKeys keys, ReadOnlySpan<float> values)
    {
        if (keys.Count == 0) return;
        int dim = table.Dim;
        RowSession session = sessions.Rent();
        // The session goes back to the pool only after CompletePending(wait: true) returned: pending RMWs hold
        // pointers into `values`, which is pinned exactly that long.
        bool reusable = false;
        fixed (float* v = values)
        {
            try
            {
                var input = new RowInput(table);
                RowOutput output = default;
                int pending = 0;
                for (int i = 0; i < keys.Count; i++)
                {
                    var key = new RowKey(table.Id, keys[i]);
                    input.Values = v + (long)i * dim;
                    if (session.RMW(ref key, ref input, ref output).IsPending && ++pending == MaxPendingPerBatch)
                    {
                        session.CompletePending(wait: true);
                        pending = 0;
                    }
                }
                session.CompletePending(wait: true);
                reusable = true;
            }
            finally
            {
                if (reusable) sessions.Return(session);
                else DiscardSession(session);
            }
        }
    }

    private unsafe void ReadRows(TableHandle table, BatchKeys keys, Span<float> destination)
    {
        if (keys.Count == 0) return;
        int dim = table.Dim;
        RowSession session = sessions.Rent();
        bool reusable = false;
        fixed (float* d = destination)
        {
            try
            {
                var input = new RowInput(table);
                RowOutput output = default;
                int pending = 0;
                for (int i = 0; i < keys.Count; i++)
                {
                    var key = new RowKey(table.Id, keys[i]);
                    output.Destination = d + (long)i * dim;
                    Status status = session.Read(ref key, ref input, ref output);
                    if (status.IsPending)
                    {
                        // Found or not, RowFunctions.ReadCompletionCallback finishes the row inside CompletePending.
                        if (++pending == MaxPendingPerBatch)
                        {
                            session.CompletePending(wait: true);
                            pending = 0;
                        }
                    }
                    else if (!status.Found)
                    {
                        table.Initializer.Fill(key.Key, new Span<float>(output.Destination, dim));
                    }
                }
                session.CompletePending(wait: true);
                reusable = true;
            }
            finally
            {
                if (reusable) sessions.Return(session);
                else DiscardSession(session);
            }
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
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
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
    private readonly ReadOnlySpan<ulong> keys;
    private readonly ulong first;

    public BatchKeys(ReadOnlySpan<ulong> keys)
    {
        this.keys = keys;
        Count = keys.Length;
        IsRange = false;
    }

    public BatchKeys(ulong first, int count)
    {
        this.first = first;
        Count = count;
        IsRange = true;
    }

    public int Count { get; }

    public bool IsRange { get; }

    public ulong this[int i]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => IsRange ? first + (ulong)i : keys[i];
    }
}
