using System.Buffers;
using System.Runtime.InteropServices;

namespace ParamDb.Storage.Export;

/// <summary>
/// Sorts a stream of uint64 keys into ascending, distinct order in bounded memory, for a table export: n must be
/// known, and the keys ascending, before the first byte of the file goes out, yet a table's keys may not fit in RAM.
/// </summary>
/// <remarks>
/// <para>Keys gather in one run buffer of <c>runKeys</c> keys. A full buffer is sorted, deduplicated and written
/// to a run file in the sort's directory. <see cref="Finish"/> merges the runs <c>fanIn</c> at a time (k-way,
/// dropping duplicates) until one sorted file remains, which <see cref="OpenReader"/> reads back as often as
/// needed. Keys that fit in one run never touch the disk: they are sorted in the buffer and read from there.</para>
/// <para>Memory: the run buffer, 8 × runKeys bytes (32 MiB by default) while keys arrive; during a merge 64 KiB
/// per input run (at most 64 runs, 4 MiB) plus 64 KiB of output. Disk: 8 bytes per key added, twice that
/// during a merge (its inputs are deleted when it ends). The directory is created at the first run written and
/// deleted, with everything in it, by <see cref="Dispose"/>.</para>
/// <para>Run files hold the keys in machine byte order (little-endian on every platform ParamDb runs on, as the
/// KV block assumes); they never leave the process. Not thread-safe: one producer, then readers one at a time.</para>
/// </remarks>
internal sealed class ExternalKeySort : IKeyChunkSink, IDisposable
{
    /// <summary>Default run size: 4 Mi keys, a 32 MiB buffer, sorted in ~0.3 s; 1 G keys make 256 runs.</summary>
    public const int DefaultRunKeys = 4 << 20;

    /// <summary>Runs merged at once: 64 keeps a merge's buffers at 4 MiB and needs a second pass only past 64 runs (256 Mi keys by default).</summary>
    public const int DefaultFanIn = 64;

    /// <summary>Keys per read or write buffer of a run file: 8,192 keys = 64 KiB.</summary>
    private const int IoKeys = 8192;

    private readonly string _directory;
    private readonly int _runKeys;
    private readonly int _fanIn;
    private readonly List<string> _runs = [];
    private ulong[]? _buffer;   // the run being filled; after Finish, the sorted keys if no run was written
    private int _buffered;
    private int _nextFile;
    private string? _sorted;    // after Finish: the file of sorted keys, or null when they are in the buffer
    private long _count = -1;   // after Finish: distinct keys
    private bool _disposed;
    private HashSet<ulong>? _excluded;   // keys to leave out (deleted rows), applied by Finish

    /// <summary>A sort whose run files go to <paramref name="directory"/>, which must not be shared with anything else.</summary>
    /// <param name="directory">Created at the first run written; deleted by <see cref="Dispose"/>.</param>
    /// <param name="runKeys">Keys per run: the memory bound, 8 bytes each.</param>
    /// <param name="fanIn">Runs merged at once, at least 2.</param>
    public ExternalKeySort(string directory, int runKeys = DefaultRunKeys, int fanIn = DefaultFanIn)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(runKeys, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(fanIn, 2);
        _directory = directory;
        _runKeys = runKeys;
        _fanIn = fanIn;
    }

    /// <summary>Keys accepted, duplicates included.</summary>
    public long KeysAdded { get; private set; }

    /// <summary>Run files written from the buffer (merge outputs not counted): 0 when the keys fit in one run.</summary>
    public int RunsWritten { get; private set; }

    /// <summary>Distinct keys, known once <see cref="Finish"/> has run.</summary>
    public long Count => _count >= 0 ? _count : throw new InvalidOperationException("Finish the sort first.");

    /// <summary>Adds keys in any order; duplicates are allowed and kept once.</summary>
    public void Accept(ReadOnlySpan<ulong> keys)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_count >= 0) throw new InvalidOperationException("The sort is finished; it takes no more keys.");
        while (!keys.IsEmpty)
        {
            _buffer ??= ArrayPool<ulong>.Shared.Rent(_runKeys);
            // A full buffer is written only when more keys come, so keys that exactly fill one run stay in memory.
            if (_buffered == _runKeys) WriteRun();
            int take = Math.Min(keys.Length, _runKeys - _buffered);
            keys[..take].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += take;
            KeysAdded += take;
            keys = keys[take..];
        }
    }

    /// <summary>Leaves <paramref name="keys"/> out of the result, whenever they were or are added (deleted rows).</summary>
    public void Exclude(IReadOnlyCollection<ulong> keys)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_count >= 0) throw new InvalidOperationException("The sort is finished; exclude keys before Finish.");
        _excluded ??= [];
        foreach (ulong key in keys) _excluded.Add(key);
    }

    /// <summary>Sorts what is left and merges the runs into one sorted file; afterwards <see cref="Count"/> and <see cref="OpenReader"/> work.</summary>
    /// <param name="cancellationToken">Checked every 8,192 merged keys.</param>
    /// <returns>The number of distinct keys.</returns>
    public long Finish(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_count >= 0) return _count;
        if (_runs.Count == 0)
        {
            // Everything fits in one run: sort it where it is and serve it from memory.
            _buffered = _buffer is null ? 0 : Without(_buffer.AsSpan(0, SortDistinct(_buffer.AsSpan(0, _buffered))));
            return _count = _buffered;
        }
        if (_buffered > 0) WriteRun();
        ReturnBuffer();
        while (_runs.Count > 1)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Merge the oldest fanIn runs and queue the result behind the others, so each pass reads every key once.
            int take = Math.Min(_fanIn, _runs.Count);
            string merged = Merge(_runs.GetRange(0, take), cancellationToken);
            for (int i = 0; i < take; i++) File.Delete(_runs[i]);
            _runs.RemoveRange(0, take);
            _runs.Add(merged);
        }
        _sorted = _runs[0];
        if (_excluded is { Count: > 0 }) _sorted = Filter(_sorted, cancellationToken);
        return _count = new FileInfo(_sorted).Length / sizeof(ulong);
    }

    /// <summary>A reader of the sorted, distinct keys from the first; open one after the other, as often as needed.</summary>
    public SortedKeyReader OpenReader()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_count < 0) throw new InvalidOperationException("Finish the sort first.");
        return _sorted is null ? new SortedKeyReader(_buffer ?? [], _buffered) : new SortedKeyReader(_sorted);
    }

    /// <summary>Returns the buffer and deletes the directory with every run in it; the sort is unusable afterwards.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReturnBuffer();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Sorts the buffer, drops duplicates and writes it as the next run.</summary>
    private void WriteRun()
    {
        int n = SortDistinct(_buffer.AsSpan(0, _buffered));
        string path = NextPath();
        using (FileStream file = CreateFile(path)) file.Write(MemoryMarshal.AsBytes(_buffer.AsSpan(0, n)));
        _runs.Add(path);
        _buffered = 0;
        RunsWritten++;
    }

    /// <summary>
    /// K-way merge of sorted, distinct run files into a new one, dropping keys that several runs hold. A heap of the
    /// runs by their current key gives the next key in log2(k) steps.
    /// </summary>
    private string Merge(List<string> inputs, CancellationToken cancellationToken)
    {
        var cursors = new RunCursor[inputs.Count];
        var heap = new PriorityQueue<int, ulong>(inputs.Count);
        string path = NextPath();
        ulong[] output = ArrayPool<ulong>.Shared.Rent(IoKeys);
        try
        {
            for (int i = 0; i < cursors.Length; i++)
            {
                cursors[i] = new RunCursor(inputs[i]);
                if (cursors[i].TryAdvance(out ulong first)) heap.Enqueue(i, first);
            }
            using FileStream file = CreateFile(path);
            int pending = 0;
            bool any = false;
            ulong last = 0;
            while (heap.TryPeek(out int run, out ulong key))
            {
                if (!any || key != last)
                {
                    output[pending++] = key;
                    last = key;
                    any = true;
                    if (pending == IoKeys)
                    {
                        file.Write(MemoryMarshal.AsBytes(output.AsSpan(0, pending)));
                        pending = 0;
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                }
                if (cursors[run].TryAdvance(out ulong next)) heap.DequeueEnqueue(run, next);
                else heap.Dequeue();
            }
            file.Write(MemoryMarshal.AsBytes(output.AsSpan(0, pending)));
            return path;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(output);
            foreach (RunCursor? cursor in cursors) cursor?.Dispose();
        }
    }

    /// <summary>Moves the keys not excluded to the front of <paramref name="keys"/>, in order; returns how many there are.</summary>
    private int Without(Span<ulong> keys)
    {
        if (_excluded is not { Count: > 0 } excluded) return keys.Length;
        int n = 0;
        foreach (ulong key in keys)
            if (!excluded.Contains(key)) keys[n++] = key;
        return n;
    }

    /// <summary>Copies the sorted file without the excluded keys (only when some rows were deleted); deletes the input.</summary>
    private string Filter(string input, CancellationToken cancellationToken)
    {
        string path = NextPath();
        ulong[] output = ArrayPool<ulong>.Shared.Rent(IoKeys);
        try
        {
            using (var cursor = new RunCursor(input))
            using (FileStream file = CreateFile(path))
            {
                int pending = 0;
                while (cursor.TryAdvance(out ulong key))
                {
                    if (_excluded!.Contains(key)) continue;
                    output[pending++] = key;
                    if (pending < IoKeys) continue;
                    file.Write(MemoryMarshal.AsBytes(output.AsSpan(0, pending)));
                    pending = 0;
                    cancellationToken.ThrowIfCancellationRequested();
                }
                file.Write(MemoryMarshal.AsBytes(output.AsSpan(0, pending)));
            }
            File.Delete(input);
            return path;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(output);
        }
    }

    /// <summary>Sorts <paramref name="keys"/> in place and moves the distinct ones to the front; returns how many there are.</summary>
    private static int SortDistinct(Span<ulong> keys)
    {
        if (keys.Length < 2) return keys.Length;
        keys.Sort();
        int n = 1;
        for (int i = 1; i < keys.Length; i++)
            if (keys[i] != keys[n - 1]) keys[n++] = keys[i];
        return n;
    }

    private string NextPath()
    {
        Directory.CreateDirectory(_directory);
        return Path.Combine(_directory, $"run-{_nextFile++:D5}.keys");
    }

    /// <summary>A new file, written once front to back; no OS buffer of ours (bufferSize 0): every write is 64 KiB or more.</summary>
    private static FileStream CreateFile(string path) => new(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0);

    private void ReturnBuffer()
    {
        if (_buffer is null) return;
        ArrayPool<ulong>.Shared.Return(_buffer);
        _buffer = null;
        _buffered = 0;
    }

    /// <summary>One input of a merge: its reader and a 64 KiB window of its keys.</summary>
    private sealed class RunCursor(string path) : IDisposable
    {
        private readonly SortedKeyReader _reader = new(path);
        private readonly ulong[] _window = ArrayPool<ulong>.Shared.Rent(IoKeys);
        private int _position;
        private int _length;

        /// <summary>The run's next key, refilling the window when it is used up; false at the end of the run.</summary>
        public bool TryAdvance(out ulong key)
        {
            if (_position == _length)
            {
                _length = _reader.Read(_window.AsSpan(0, IoKeys));
                _position = 0;
                if (_length == 0)
                {
                    key = 0;
                    return false;
                }
            }
            key = _window[_position++];
            return true;
        }

        public void Dispose()
        {
            _reader.Dispose();
            ArrayPool<ulong>.Shared.Return(_window);
        }
    }
}
