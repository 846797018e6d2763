using System.Buffers;
using System.Runtime.InteropServices;
using ParamDb.Protocol.Safetensors;

namespace ParamDb.Storage.Export;

/// <summary>
/// One live export of a table as a safetensors file (docs/export.md), from <see cref="ParamStore.PrepareExport"/>:
/// the table's keys are already scanned and sorted, so the file's length is known; <see cref="WriteToAsync"/>
/// writes the file in constant memory. Dispose it to delete its temporary files.
/// </summary>
/// <remarks>
/// Not a point-in-time view: the keys are those the scan found, and each row's values are read when its batch is
/// written, so a push during the export may or may not be in the file, and rows created after the scan are not.
/// </remarks>
public sealed class TableExport : ITableExport
{
    /// <summary>Keys an export sorts in memory at once by default: 4 Mi keys, a 32 MiB buffer (see <see cref="ParamStore.PrepareExport"/>).</summary>
    public const int DefaultRunKeys = ExternalKeySort.DefaultRunKeys;

    /// <summary>Bytes pulled and written per batch: 1 MiB, 4,096 rows of dim 64, large enough that a batch's pull is split over every core.</summary>
    private const int BatchBytes = 1 << 20;

    /// <summary>Rows per batch at most: 4,096, so the batch's keys (32 KiB) stay small next to its values.</summary>
    private const int MaxBatchRows = 4096;

    private readonly ParamStore _store;
    private readonly TableHandle _table;
    private readonly ExternalKeySort _keys;

    internal TableExport(ParamStore store, TableHandle table, ExternalKeySort keys, SafetensorsHeader header)
    {
        _store = store;
        _table = table;
        _keys = keys;
        Header = header;
    }

    /// <summary>The file's prefix: n, dim, the schema and every offset.</summary>
    public SafetensorsHeader Header { get; }

    /// <summary>Rows in the file, n.</summary>
    public long Rows => Header.Count;

    /// <summary>Bytes of the whole file: 8 + header + 8n + 4·n·dim.</summary>
    public long Length => Header.FileLength;

    /// <summary>
    /// Writes the file: the prefix, the sorted keys, then each batch of rows pulled with <see cref="ParamStore.Pull"/>.
    /// Two pooled 1 MiB buffers alternate, so the next batch is read while the previous one is being written.
    /// Call it once.
    /// </summary>
    /// <param name="destination">Receives exactly <see cref="Length"/> bytes.</param>
    /// <param name="cancellationToken">Stops between batches and aborts the write in flight.</param>
    public async Task WriteToAsync(Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        int dim = _table.Dim;
        int batchRows = Math.Clamp(BatchBytes / (dim * sizeof(float)), 1, MaxBatchRows);
        byte[][] buffers = [ArrayPool<byte>.Shared.Rent(BatchBytes), ArrayPool<byte>.Shared.Rent(BatchBytes)];
        ulong[] batchKeys = ArrayPool<ulong>.Shared.Rent(batchRows);
        try
        {
            await destination.WriteAsync(Header.Prefix, cancellationToken).ConfigureAwait(false);
            using (SortedKeyReader reader = _keys.OpenReader())
            {
                long written = await PumpAsync(destination, buffers, buffer =>
                    reader.Read(MemoryMarshal.Cast<byte, ulong>(buffer.AsSpan(0, BatchBytes))) * sizeof(ulong), cancellationToken).ConfigureAwait(false);
                CheckWritten("keys", written, Header.KeysLength);
            }
            using (SortedKeyReader reader = _keys.OpenReader())
            {
                long written = await PumpAsync(destination, buffers, buffer =>
                {
                    int rows = reader.Read(batchKeys.AsSpan(0, batchRows));
                    int bytes = rows * dim * sizeof(float);
                    _store.Pull(_table, batchKeys.AsSpan(0, rows), MemoryMarshal.Cast<byte, float>(buffer.AsSpan(0, bytes)));
                    return bytes;
                }, cancellationToken).ConfigureAwait(false);
                CheckWritten("values", written, Header.ValuesLength);
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(batchKeys);
            foreach (byte[] buffer in buffers) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Deletes the export's temporary files.</summary>
    public void Dispose() => _keys.Dispose();

    /// <summary>
    /// Fills one buffer while the other is written, until <paramref name="fill"/> returns 0. Every write has finished
    /// when this returns or throws: the buffers go back to the pool afterwards.
    /// </summary>
    /// <returns>Bytes written.</returns>
    private static async Task<long> PumpAsync(Stream destination, byte[][] buffers, Func<byte[], int> fill, CancellationToken cancellationToken)
    {
        long total = 0;
        int current = 0;
        Task writing = Task.CompletedTask;
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int bytes = fill(buffers[current]);
                await writing.ConfigureAwait(false);
                if (bytes == 0) return total;
                writing = destination.WriteAsync(buffers[current].AsMemory(0, bytes), cancellationToken).AsTask();
                total += bytes;
                current ^= 1;
            }
        }
        finally
        {
            // A fill that threw leaves a write in flight that still reads its buffer; its own failure, if any, is
            // not the one to report.
            if (!writing.IsCompleted) await writing.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private static void CheckWritten(string section, long written, long expected)
    {
        if (written != expected)
            throw new InvalidDataException($"The export wrote {written} bytes of {section} where its header promised {expected}: the sorted keys changed under it.");
    }
}
