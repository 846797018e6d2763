using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using FASTER.core;
using ParamDb.Storage.Import;

namespace ParamDb.Storage;

/// <summary>Table imports: overwriting rows (set-rows), applying a checked file in batches, and its spool file.</summary>
public sealed partial class ParamStore
{
    /// <summary>
    /// Bytes of keys and values per import batch, and so per set-rows log record: 4 MiB, a W-dense push's size,
    /// so one record never holds the log's batch for long and the push gate is released between batches (a
    /// checkpoint waits at most one batch). dim 64: 15,887 rows per batch.
    /// </summary>
    private const int ImportBatchBytes = 4 << 20;

    /// <summary>
    /// Overwrites rows: each key's row becomes its values, whatever it held, and its optimizer state is reset to a
    /// new row's (adagrad's accumulator to <c>initialAccumulator</c>, adam's m, v and step to 0), so the next push
    /// steps like a first push. The updater is not run and no clock moves. Logged and applied like a push, inside
    /// one push-gate section: a checkpoint holds all of the batch or none of it.
    /// </summary>
    /// <param name="table">The table.</param>
    /// <param name="keys">Row keys, strictly ascending and below the table's <c>maxKey</c> (validated by the caller).</param>
    /// <param name="values">Row-major, <c>keys.Length × Dim</c> floats, stored bit for bit (NaN included).</param>
    /// <returns>Completes when the batch is durable in the store's mode; acknowledge it only then. Already faulted
    /// when the write-ahead log refused it, in which case nothing was applied.</returns>
    /// <remarks>A push to a row while it is overwritten lands before or after the overwrite, and a replay of the log
    /// may order the two the other way (their records are appended before they are applied, each under its own
    /// lock): while a table is being imported into, push only to rows the file does not hold.</remarks>
    public Task SetRows(TableHandle table, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values)
    {
        CheckBatch(table, keys.Length, values.Length, nameof(values));
        return ApplySetRows(table, keys, values) ?? Task.CompletedTask;
    }

    /// <summary>
    /// Applies a checked import file to <paramref name="table"/> in batches of at most 4 MiB, each one
    /// <see cref="SetRows"/>: one write-ahead log record and one push-gate section per batch. Rows the file does not
    /// hold are left as they are.
    /// </summary>
    /// <param name="file">The checked file; its schema must be the table's.</param>
    /// <param name="table">The target table.</param>
    /// <param name="cancellationToken">Stops between batches (the node is shutting down); the batches before stay applied.</param>
    /// <returns>Rows applied, non-finite values among them, and the task to await before acknowledging.</returns>
    /// <exception cref="ArgumentException">The file's schema is not the table's.</exception>
    /// <exception cref="OperationCanceledException">Cancelled part-way: the import is partly applied; running it again completes it.</exception>
    /// <remarks>
    /// Not atomic: a crash or a cancel part-way leaves the batches before it applied (and durable once their
    /// records are). Running the same import again is idempotent: it writes the same values and state again.
    /// </remarks>
    public ImportResult Import(TableImport file, TableHandle table, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(table);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (file.Header.Schema != table.Schema)
            throw new ArgumentException($"The file's schema is not table {table}'s; an import needs the same schema.", nameof(file));
        var clock = Stopwatch.StartNew();
        int dim = table.Dim;
        long count = file.Rows;
        int batchRows = (int)Math.Clamp(ImportBatchBytes / (sizeof(ulong) + (long)dim * sizeof(float)), 1, Math.Max(1, count));
        ulong[] keys = ArrayPool<ulong>.Shared.Rent(batchRows);
        float[] values = ArrayPool<float>.Shared.Rent(batchRows * dim);
        Task durable = Task.CompletedTask;
        long nonFinite = 0;
        try
        {
            for (long row = 0; row < count;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int take = (int)Math.Min(batchRows, count - row);
                Span<ulong> batchKeys = keys.AsSpan(0, take);
                Span<float> batchValues = values.AsSpan(0, take * dim);
                file.ReadRows(row, batchKeys, batchValues);
                nonFinite += CountNonFinite(batchValues);
                if (ApplySetRows(table, batchKeys, batchValues) is { } logged)
                {
                    // The log is written in LSN order and a failed write fails every later record, so the last
                    // record's task covers every batch before it.
                    if (logged.IsFaulted) return new ImportResult(row, nonFinite, logged);
                    durable = logged;
                }
                row += take;
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(keys);
            ArrayPool<float>.Shared.Return(values);
        }
        _logger.Imported(count, table.Name, table.Id, file.Header.FileLength, nonFinite, clock.ElapsedMilliseconds);
        return new ImportResult(count, nonFinite, durable);
    }

    /// <summary>
    /// Creates a temporary file, <c>DATA/tmp/spool-&lt;guid&gt;</c>, open for reading and writing and deleted when it is
    /// closed, however the request ends: an import's body, a cluster import's slices and owners, a cluster export's
    /// merge order. A process that dies while one is open leaves it behind: the first import or export after the
    /// store opens deletes such leftovers.
    /// </summary>
    public FileStream CreateSpoolFile()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        SweepTemporaryFiles();
        Directory.CreateDirectory(TempDirectory);
        string path = Path.Combine(TempDirectory, SpoolFilePrefix + Guid.NewGuid().ToString("N"));
        // 1 MiB of write buffer: an import's body arrives in Kestrel's small segments, and a write call per segment
        // would cost more than the copy. Whoever reads the file back flushes first.
        return new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 20, FileOptions.DeleteOnClose);
    }

    /// <summary>Logs and applies one batch of overwritten rows; the single place set-rows go through, live or replayed.</summary>
    internal unsafe Task? ApplySetRows(TableHandle table, ReadOnlySpan<ulong> keys, ReadOnlySpan<float> values)
    {
        if (keys.IsEmpty) return null;
        fixed (ulong* k = keys)
        fixed (float* v = values)
        {
            var batch = new PinnedBatch(table, isRange: false, 0, k, v, keys.Length);
            _pushGate.EnterReadLock();
            try
            {
                Task? durable = LogSetRows(table, keys, values);
                if (durable is { IsFaulted: true }) return durable;   // the log refused it: nothing applied
                RunChunks<SetRow>(batch);
                return durable;
            }
            finally
            {
                _pushGate.ExitReadLock();
            }
        }
    }

    /// <summary>NaN and ±Infinity in <paramref name="values"/>: one vectorized pass, and a count only when there are some.</summary>
    private static long CountNonFinite(ReadOnlySpan<float> values)
    {
        if (TensorPrimitives.IsFiniteAll(values)) return 0;
        long count = 0;
        foreach (float v in values)
            if (!float.IsFinite(v)) count++;
        return count;
    }
}

/// <summary>An import's row: an RMW that overwrites the values and resets the optimizer state (<see cref="RowInput.Overwrite"/>).</summary>
internal readonly unsafe struct SetRow : IRowOperation
{
    public static bool Writes => true;

    public static Status Run(RowSession session, ref RowKey key, ref RowInput input, ref RowOutput output, float* row)
    {
        input.Values = row;
        input.Overwrite = true;
        return session.RMW(ref key, ref input, ref output);
    }
}
