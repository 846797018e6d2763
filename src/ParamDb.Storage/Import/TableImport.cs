using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using ParamDb.Protocol;
using ParamDb.Protocol.Safetensors;

namespace ParamDb.Storage.Import;

/// <summary>
/// A safetensors table export (docs/export.md) received for import and checked in full, before anything is
/// applied: the prefix with <see cref="SafetensorsHeader.TryParse"/> (header, tensors, schema metadata, the file's
/// exact length) and then every key with <see cref="SafetensorsKeyChecker"/> (strictly ascending, below the
/// schema's <c>maxKey</c>) and, unless the schema says <c>"allowNonFinite": true</c>, every value (no NaN or
/// ±Infinity, as for a push). With the flag any float32 bits are a value, so an export of such a table imports
/// back bit for bit.
/// <see cref="ParamStore.Import"/> applies it.
/// </summary>
/// <remarks>
/// The file is read with positional reads (<see cref="RandomAccess"/>) in pooled chunks, so the check holds
/// 512 KiB whatever n is, and reads 8 + N + 8n bytes, plus 4n·dim for the values unless the schema allows
/// non-finite ones: for 1 M rows of dim 64 (264 MB) that is 8 MB, or 264 MB with the values.
/// The caller owns the file handle and keeps it open (and the file unchanged) while the import is used.
/// The file's bytes are little-endian, as the CPUs .NET runs ParamDb on.
/// </remarks>
public sealed class TableImport
{
    /// <summary>Keys read at once while checking: 64 Ki keys, 512 KiB.</summary>
    private const int CheckChunkKeys = 64 * 1024;

    private TableImport(SafeFileHandle file, SafetensorsHeader header)
    {
        File = file;
        Header = header;
    }

    /// <summary>The file's prefix: n, dim, the schema, the offsets.</summary>
    public SafetensorsHeader Header { get; }

    /// <summary>Rows in the file, n.</summary>
    public long Rows => Header.Count;

    /// <summary>The checked file, read again when the rows are applied.</summary>
    internal SafeFileHandle File { get; }

    /// <summary>
    /// Checks the whole file. Never throws for malformed content: the reason comes back in <paramref name="error"/>
    /// (<c>bad_safetensors</c>, <c>truncated</c>, <c>length_mismatch</c>, <c>unsorted_keys</c>, <c>duplicate_keys</c>,
    /// <c>key_out_of_range</c>, <c>non_finite_value</c>), with a detail naming the entry or the row at fault.
    /// </summary>
    /// <param name="file">The file, open for reading; its length is the file's length.</param>
    /// <param name="import">The checked import when true.</param>
    /// <param name="error">The rejection when false.</param>
    /// <param name="cancellationToken">Stops the key check between chunks.</param>
    /// <exception cref="IOException">The file could not be read, or shrank while it was.</exception>
    public static bool TryCheck(SafeFileHandle file, [NotNullWhen(true)] out TableImport? import, out ProtocolError error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(file);
        import = null;
        long length = RandomAccess.GetLength(file);
        Span<byte> lengthField = stackalloc byte[SafetensorsHeader.LengthFieldSize];
        int got = FileReads.ReadUpTo(file, lengthField, 0);
        if (!SafetensorsHeader.TryReadHeaderLength(lengthField[..got], length, out int headerLength, out error)) return false;
        // At most 100 MB (MaxHeaderLength), once per import; ours are a few hundred bytes.
        byte[] prefix = GC.AllocateUninitializedArray<byte>(SafetensorsHeader.LengthFieldSize + headerLength);
        FileReads.ReadExactly(file, prefix, 0);
        if (!SafetensorsHeader.TryParse(prefix, length, out SafetensorsHeader? header, out error)) return false;

        var checker = new SafetensorsKeyChecker(header.Schema.MaxKey);
        ulong[] chunk = ArrayPool<ulong>.Shared.Rent(CheckChunkKeys);
        try
        {
            for (long row = 0; row < header.Count;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int take = (int)Math.Min(CheckChunkKeys, header.Count - row);
                Span<ulong> keys = chunk.AsSpan(0, take);
                FileReads.ReadExactly(file, MemoryMarshal.AsBytes(keys), header.KeysOffset + row * sizeof(ulong));
                if (!checker.TryAccept(keys, out error)) return false;
                row += take;
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(chunk);
        }
        if (!header.Schema.AllowNonFinite && !TryCheckFinite(file, header, out error, cancellationToken)) return false;
        import = new TableImport(file, header);
        return true;
    }

    /// <summary>
    /// Checks that the values hold no NaN or ±Infinity, as a push to a table without <c>allowNonFinite</c> must; on a
    /// hit the <c>non_finite_value</c> detail names the first bad row, its key and the element. Reads the values
    /// section once more (4n·dim bytes, in 512 KiB chunks): the file was just spooled, so it is mostly in the page
    /// cache, and a rejected import must change nothing, which rules out finding the bad row while applying.
    /// </summary>
    private static bool TryCheckFinite(SafeFileHandle file, SafetensorsHeader header, out ProtocolError error, CancellationToken cancellationToken)
    {
        int dim = header.Dim;
        // Whole rows per chunk, so a hit's row is (chunk's first row + index / dim); at least one row (dim ≤ 65,536: 256 KiB).
        int chunkRows = Math.Max(1, CheckChunkKeys * sizeof(ulong) / sizeof(float) / dim);
        float[] chunk = ArrayPool<float>.Shared.Rent(chunkRows * dim);
        try
        {
            for (long row = 0; row < header.Count;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int take = (int)Math.Min(chunkRows, header.Count - row);
                Span<float> values = chunk.AsSpan(0, take * dim);
                FileReads.ReadExactly(file, MemoryMarshal.AsBytes(values), header.ValuesOffset + row * dim * sizeof(float));
                int at = FiniteValues.IndexOfNonFinite(values);
                if (at >= 0)
                {
                    long bad = row + at / dim;
                    Span<ulong> key = stackalloc ulong[1];
                    FileReads.ReadExactly(file, MemoryMarshal.AsBytes(key), header.KeysOffset + bad * sizeof(ulong));
                    string what = FiniteValues.Name(values[at]);
                    error = new ProtocolError(400, ProblemCodes.NonFiniteValue,
                        $"Row {bad} (key {key[0]}), element {at % dim} of the file is {what}; its schema does not have \"allowNonFinite\": true, so its values must be finite. Nothing was applied.");
                    return false;
                }
                row += take;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(chunk);
        }
        error = default;
        return true;
    }

    /// <summary>Reads rows <paramref name="first"/> … <paramref name="first"/>+keys.Length-1: their keys and their values.</summary>
    internal void ReadRows(long first, Span<ulong> keys, Span<float> values)
    {
        FileReads.ReadExactly(File, MemoryMarshal.AsBytes(keys), Header.KeysOffset + first * sizeof(ulong));
        FileReads.ReadExactly(File, MemoryMarshal.AsBytes(values), Header.ValuesOffset + first * Header.Dim * sizeof(float));
    }
}

/// <summary>What <see cref="ParamStore.Import"/> applied.</summary>
/// <param name="Rows">Rows applied: all of the file's, unless the write-ahead log refused a batch.</param>
/// <param name="NonFiniteValues">Values among them that are NaN or ±Infinity, stored as they are.</param>
/// <param name="Durable">Completes when every applied batch is durable in the store's mode; acknowledge the import
/// only then. Faults when the write-ahead log could not take a batch (then <paramref name="Rows"/> stops before it).</param>
public readonly record struct ImportResult(long Rows, long NonFiniteValues, Task Durable);
