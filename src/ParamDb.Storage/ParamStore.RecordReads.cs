using System.Buffers;
using System.Buffers.Binary;
using FASTER.core;
using ParamDb.Protocol;
using ParamDb.Storage.Transfer;

namespace ParamDb.Storage;

/// <summary>Reading chosen rows as whole records: what a primary ships to its backups after it applied pushes.</summary>
public sealed partial class ParamStore
{
    /// <summary>
    /// The most bytes <see cref="ReadRecords"/> writes for <paramref name="keys"/> keys of <paramref name="table"/>
    /// (every key a row, every registered worker a clock): to size the destination once.
    /// </summary>
    public long RecordsSize(TableHandle table, int keys)
    {
        ArgumentNullException.ThrowIfNull(table);
        return RecordBatch.SizeOf(table._layout.PayloadBytes, keys, _registry.All.Length);
    }

    /// <summary>
    /// Writes the current whole records (values and optimizer state) of <paramref name="keys"/>, all in the range of
    /// <paramref name="table"/> that ends at <paramref name="token"/>, to <paramref name="destination"/> as one
    /// <see cref="RecordBatch"/> carrying the range's vector clock. The clock is read first, so every push it counts
    /// is in the records: replication after aggregation ships the rows its pushes touched this way, and a backup that
    /// applies the batch skips a retry of any of them. Keys without a row are left out.
    /// </summary>
    /// <returns>The batch's length in bytes.</returns>
    /// <exception cref="ArgumentException">The token ends none of this store's ranges, or the keys do not ascend
    /// strictly, or one lies outside the range.</exception>
    /// <exception cref="InvalidOperationException">The store's ranges changed during the read; read again.</exception>
    public unsafe int ReadRecords(TableHandle table, ulong token, ReadOnlySpan<ulong> keys, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(destination);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Ring ring = Ranges;
        int range = RangeIndex(ring, token, nameof(token));
        for (int i = 0; i < keys.Length; i++)
        {
            if (i > 0 && keys[i] <= keys[i - 1]) throw new ArgumentException($"Keys must ascend strictly; key {keys[i]} follows {keys[i - 1]}.", nameof(keys));
            if (ring.RangeOf(table.RingHash, keys[i]) != range) throw new ArgumentException($"Key {keys[i]} lies outside range {token}.", nameof(keys));
        }

        // The clock first: a push it counts wrote its rows before it advanced the clock.
        (uint Worker, ulong Clock)[] clocks = ReadRangeClocks(table, ring, [range])[0];

        int payload = table._layout.PayloadBytes, stride = payload / sizeof(float) + 1;   // + 1: the row-exists flag
        float[] rows = ArrayPool<float>.Shared.Rent(Math.Max(1, keys.Length * stride));
        try
        {
            Array.Clear(rows, 0, keys.Length * stride);
            if (keys.Length > 0)
            {
                fixed (ulong* k = keys)
                fixed (float* r = rows)
                {
                    RunChunks<GetRecord>(new PinnedBatch(table, isRange: false, 0, k, r, keys.Length) { Stride = stride });
                }
            }
            int found = 0;
            for (int i = 0; i < keys.Length; i++)
                if (rows[i * stride + stride - 1] != 0) found++;
            int size = (int)RecordBatch.SizeOf(payload, found, clocks.Length);
            Span<byte> batch = destination.GetSpan(size)[..size];
            RecordBatch.Lay(batch, table.Id, token, payload, found, clocks, out Span<byte> keyBytes, out Span<byte> payloads);
            Span<byte> rowBytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.AsSpan());
            int n = 0;
            for (int i = 0; i < keys.Length; i++)
            {
                if (rows[i * stride + stride - 1] == 0) continue;
                BinaryPrimitives.WriteUInt64LittleEndian(keyBytes[(8 * n)..], keys[i]);
                rowBytes.Slice(i * stride * sizeof(float), payload).CopyTo(payloads[(payload * n)..]);
                n++;
            }
            destination.Advance(size);
            return size;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rows);
        }
    }
}

public sealed partial class ParamStore
{
    /// <summary>
    /// Runs <paramref name="read"/> while no clocked push of <paramref name="table"/> runs: it takes every worker's
    /// clock lock of the table, which a clocked push holds from before its rows change until after its clock has
    /// advanced and its <see cref="IPushTap"/> call. So what <paramref name="read"/> reads (<see cref="ReadRecords"/>,
    /// <see cref="CopyRanges"/>) holds, for every clock it carries, exactly the rows of the pushes that clock counts,
    /// and the tap has been told of every one of them. A backup that applies such batches skips a retry of a push
    /// only if it holds that push's rows. Unclocked pushes do not take these locks: their rows may be read half
    /// applied, as at-least-once allows. Clocked pushes of the table wait meanwhile: keep it short.
    /// </summary>
    /// <remarks><paramref name="read"/> must not push, and must not wait for anything that does.</remarks>
    public T HoldClockedPushes<T>(TableHandle table, Func<T> read)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(read);
        while (true)
        {
            uint[] workers = WorkerIds();
            var locks = new List<Versions.WorkerClocks>(workers.Length);
            foreach (uint worker in workers) locks.Add(table._clocks.For(worker));
            using (HeldClockLocks.Enter(locks))
            {
                // A worker registered while the locks were taken has a lock not held here: take them all again.
                if (!WorkerIds().AsSpan().SequenceEqual(workers)) continue;
                return read();   // the locks are re-entrant: the clock reads inside take them again
            }
        }
    }
}

/// <summary>A whole-record read: the payload and a row-exists flag into the destination (<see cref="RowInput.WholeRecord"/>).</summary>
internal readonly unsafe struct GetRecord : IRowOperation
{
    public static bool Writes => false;

    public static Status Run(RowSession session, ref RowKey key, ref RowInput input, ref RowOutput output, float* row)
    {
        input.WholeRecord = true;
        output.Destination = row;
        return session.Read(ref key, ref input, ref output);   // a row that does not exist leaves its flag at 0
    }
}
