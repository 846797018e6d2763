namespace ParamDb.Storage.Durability;

/// <summary>
/// The CRC-32C of every piece <see cref="CheckpointFileDevice"/> wrote, by file, so a checkpoint's manifest can
/// checksum a file it just wrote without reading it back (<see cref="TryGet"/>). One per store.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> Reading a 1 GiB checkpoint back to checksum it took ~0.9 s of a 2.5 s full checkpoint: past the
/// page cache the disk reads at ~1.3 GB/s here, and through it the pages cost more (see <see cref="DirectFile"/>).
/// </para>
/// <para><b>Why the device copies before it writes.</b> A piece's checksum must be of the bytes that reached the
/// file. FASTER hands the device its live log pages, and records after the snapshot's end can be appended to the
/// last page while it is written; the device therefore copies each piece, checksums the copy and writes the copy.
/// </para>
/// <para>A file is vouched for only when its pieces tile it from 0 to its current length. A write that covers
/// earlier pieces whole replaces them; one that overlaps a piece in part leaves the file unknown, and so does a
/// file this process did not write whole (one extended after a restart): those are read.</para>
/// </remarks>
internal sealed class WrittenChecksums
{
    private readonly Dictionary<string, Ledger> _files = new(StringComparer.Ordinal);
    private readonly Lock _sync = new();

    /// <summary>Files <see cref="TryGet"/> vouched for; tests check the manifest took this path.</summary>
    public int Vouched => Volatile.Read(ref _vouched);

    private int _vouched;

    /// <summary>Records that <paramref name="length"/> bytes with CRC <paramref name="crc"/> were written at <paramref name="offset"/>.</summary>
    public void Record(string path, long offset, int length, uint crc)
    {
        path = Path.GetFullPath(path);
        lock (_sync)
        {
            if (!_files.TryGetValue(path, out Ledger? ledger)) _files[path] = ledger = new Ledger();
            if (ledger.Unknown) return;
            long end = offset + length;
            SortedList<long, (int Length, uint Crc)> pieces = ledger.Pieces;
            for (int i = pieces.Count - 1; i >= 0; i--)
            {
                long start = pieces.Keys[i], stop = start + pieces.Values[i].Length;
                if (stop <= offset || start >= end) continue;
                if (start >= offset && stop <= end)
                {
                    pieces.RemoveAt(i);
                    continue;
                }
                ledger.Unknown = true;
                pieces.Clear();
                return;
            }
            pieces.Add(offset, (length, crc));
        }
    }

    /// <summary>The file's CRC-32C and length from what was written, when the pieces cover it exactly.</summary>
    public bool TryGet(string path, out uint crc, out long length)
    {
        crc = 0;
        length = new FileInfo(path).Length;
        lock (_sync)
        {
            if (!_files.TryGetValue(Path.GetFullPath(path), out Ledger? ledger) || ledger.Unknown) return false;
            long at = 0;
            uint combined = 0;   // the CRC-32C of no bytes
            foreach ((long start, (int pieceLength, uint pieceCrc)) in ledger.Pieces)
            {
                if (start != at) return false;
                combined = Crc32C.Combine(combined, pieceCrc, pieceLength);
                at += pieceLength;
            }
            if (at != length) return false;
            crc = combined;
        }
        Interlocked.Increment(ref _vouched);
        return true;
    }

    /// <summary>The file's CRC-32C and length: from what was written when that covers it, else read.</summary>
    public (uint Crc, long Length) Of(string path) => TryGet(path, out uint crc, out long length) ? (crc, length) : Crc32C.OfFile(path);

    /// <summary>Forgets <paramref name="path"/> and every file below it (deleted, or about to be).</summary>
    public void Forget(string path)
    {
        string full = Path.GetFullPath(path);
        string below = Path.TrimEndingDirectorySeparator(full) + Path.DirectorySeparatorChar;
        lock (_sync)
        {
            List<string>? gone = null;
            foreach (string file in _files.Keys)
                if (file == full || file.StartsWith(below, StringComparison.Ordinal)) (gone ??= []).Add(file);
            if (gone is not null) foreach (string file in gone) _files.Remove(file);
        }
    }

    private sealed class Ledger
    {
        public readonly SortedList<long, (int Length, uint Crc)> Pieces = [];
        public bool Unknown;
    }
}
