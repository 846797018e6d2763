using System.Buffers;

namespace ParamDb.Storage.Durability;

/// <summary>
/// An append-only log of push records with group commit (docs/durability.md). Appenders that find a write in
/// progress copy their record into the open batch and get back a task for it; whole batches are written to the
/// newest segment, one at a time, and, when <see cref="FlushToDisk"/> is set, fsynced before the batch's task
/// completes. So a thousand concurrent pushes cost one write (and one fsync), not a thousand.
/// </summary>
/// <remarks>
/// What "durable" means follows the mode: without <see cref="FlushToDisk"/> a completed record has been handed to
/// the OS (<c>write</c> returned), which survives the process being killed but not the machine losing power;
/// with it, the record is on the device.
/// <para><b>Who writes (leader-based group commit).</b> One thread at a time holds the write token. Without
/// <see cref="FlushToDisk"/>, an appender that finds no write in progress takes the token and writes its record
/// itself, straight from its own buffers (nothing else is open then), before
/// <see cref="Append(ReadOnlySpan{byte})"/> returns: its task is then already complete, so the push is
/// acknowledged with no thread hop at all. Appenders that come while a write is in progress only copy their
/// record: it rides in the next batch. A leader that finds records left behind when
/// its write ends hands the token to the writer thread, which writes until none are left, so no leader is held
/// for more than its own batch. Why: on 2 cores the writer thread waited for a core while both push handlers and
/// the load generator ran, and every acknowledgement waited on it (W-sparse in <c>wal</c> mode ran at 0.49–0.55 of
/// <c>checkpoint</c> mode). With <see cref="FlushToDisk"/> every batch goes to the writer thread as before: an
/// fsync waits for the device for milliseconds, and there the handler is better off applying its push meanwhile.</para>
/// <para>Opening a log ends the newest segment at its last valid record (a crash tears at most that tail) and
/// starts a new segment, so appends never follow torn bytes.</para>
/// </remarks>
internal sealed class WriteAheadLog : IDisposable
{
    private readonly string _directory;
    private readonly long _segmentBytes;
    private readonly Thread _writer;
    private readonly object _lock = new();

    /// <summary>
    /// The most bytes an open batch takes before appenders wait for the writer: 256 MiB, 64 W-dense pushes. Beyond
    /// that the disk is the bound and a larger batch would only hold more memory.
    /// </summary>
    private const int MaxOpenBytes = 256 << 20;

    // Guarded by _lock: the batch being filled, its first LSN, the task its records wait on, and the write token
    // (_writing: a thread is writing or about to; _handoff: the writer thread is to take it over).
    private byte[] _open;
    private int _openLength;
    private long _openFirstLsn;
    private TaskCompletionSource _openDone = NewBatchTask();
    private TaskCompletionSource _writingDone = NewBatchTask();
    private long _writingLast;
    private long _lastLsn;
    private long _appendedBytes;
    private bool _closing;
    private bool _writing;
    private bool _handoff;
    private Exception? _failure;

    // Owned by the holder of the write token.
    private byte[] _spare;
    private WalSegment? _segment;
    private long _durableLsn;
    private long _batches;

    private WriteAheadLog(string directory, long segmentBytes, bool flushToDisk, long lastLsn)
    {
        _directory = directory;
        _segmentBytes = segmentBytes;
        FlushToDisk = flushToDisk;
        _lastLsn = lastLsn;
        _durableLsn = lastLsn;
        _open = ArrayPool<byte>.Shared.Rent(1 << 20);
        _spare = ArrayPool<byte>.Shared.Rent(1 << 20);
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "ParamDb WAL writer" };
        _writer.Start();
    }

    /// <summary>Whether a batch is fsynced before its records count as durable.</summary>
    public bool FlushToDisk { get; }

    /// <summary>The LSN of the newest record appended (0 when there is none).</summary>
    public long LastLsn
    {
        get { lock (_lock) return _lastLsn; }
    }

    /// <summary>The LSN up to which every record is durable.</summary>
    public long DurableLsn => Interlocked.Read(ref _durableLsn);

    /// <summary>Bytes of records appended since opening, framing included.</summary>
    public long AppendedBytes
    {
        get { lock (_lock) return _appendedBytes; }
    }

    /// <summary>Batches written since opening: fewer than records when appends were grouped.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>
    /// Opens the log in <paramref name="directory"/> (created if missing), ending its newest segment at the last
    /// valid record. Records before that are not read here: <see cref="WalReader.Replay"/> does that.
    /// </summary>
    /// <param name="directory">The log's folder; nothing else should live there.</param>
    /// <param name="segmentBytes">Size after which a new segment is started, at a batch boundary.</param>
    /// <param name="flushToDisk">fsync each batch before completing it.</param>
    /// <param name="lastLsnAtLeast">
    /// The newest LSN a checkpoint already contains. When every record in the log is older (the log was removed,
    /// or it was last written in a mode without one), its segments are deleted and numbering continues after
    /// this LSN, so a later replay never mistakes new records for ones the checkpoint holds.
    /// </param>
    /// <exception cref="WalCorruptException">A segment other than the newest is damaged.</exception>
    public static WriteAheadLog Open(string directory, long segmentBytes, bool flushToDisk, long lastLsnAtLeast = 0)
    {
        Directory.CreateDirectory(directory);
        WalScan scan = WalReader.Scan(directory, fromLsn: long.MaxValue, visit: null);
        if (scan.LastLsn < lastLsnAtLeast)
        {
            foreach ((_, string path) in WalFormat.ListSegments(directory)) File.Delete(path);
            return new WriteAheadLog(directory, segmentBytes, flushToDisk, lastLsnAtLeast);
        }
        if (scan.TornSegment is { } torn && scan.TornAt == 0)
        {
            File.Delete(torn); // no valid record: its name would be the new segment's
        }
        else if (scan.TornSegment is { } tail)
        {
            using var file = new FileStream(tail, FileMode.Open, FileAccess.Write, FileShare.Read);
            file.SetLength(scan.TornAt);
            file.Flush(flushToDisk);
        }
        return new WriteAheadLog(directory, segmentBytes, flushToDisk, scan.LastLsn);
    }

    /// <summary>
    /// Appends one record and returns its LSN and a task that completes once it is durable (or faults when the
    /// log cannot be written). The payload is copied; the caller may reuse it at once.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The log is closing.</exception>
    /// <exception cref="IOException">An earlier batch failed to write; the log takes no more records.</exception>
    public (long Lsn, Task Durable) Append(ReadOnlySpan<byte> payload) => Append(payload, default, default);

    /// <summary>Appends one record whose payload is the three parts in order (see <see cref="Append(ReadOnlySpan{byte})"/>).</summary>
    public (long Lsn, Task Durable) Append(ReadOnlySpan<byte> part1, ReadOnlySpan<byte> part2, ReadOnlySpan<byte> part3)
    {
        long payloadLength = (long)part1.Length + part2.Length + part3.Length;
        if (payloadLength > WalFormat.MaxPayload) throw new ArgumentOutOfRangeException(nameof(part3), "A WAL record is at most 1 GiB.");
        int size = WalFormat.HeaderSize + (int)payloadLength;
        // The checksum's payload part needs no LSN: computed here, two appenders checksum at once (0.13 ms for a
        // 4 MiB push), and the lock is held only for the copy.
        uint payloadRegister = WalFormat.PayloadRegister(part1, part2, part3);
        long lsn;
        Batch lead;
        Span<byte> header = stackalloc byte[WalFormat.HeaderSize];
        lock (_lock)
        {
            // Backpressure: while the writer is behind by a full batch, appenders wait instead of growing it.
            while (_openLength > 0 && _openLength + size > MaxOpenBytes && !_closing && _failure is null) Monitor.Wait(_lock);
            ObjectDisposedException.ThrowIf(_closing, this);
            if (_failure is not null) throw new IOException("The write-ahead log failed earlier and takes no more records.", _failure);
            lsn = ++_lastLsn;
            _appendedBytes += size;
            if (!_writing && !FlushToDisk)
            {
                // A leader's record is alone: with no write in progress nothing is open (a write that ends with
                // records left hands them to the writer thread). So it goes to the file from the caller's own
                // buffers, not copied into the batch first: the copy was 16 % of the log's CPU under W-dense
                // pushes (~5 % of the node's), for bytes written once.
                _writing = true;
                _writingLast = lsn;
                _writingDone = NewBatchTask();
                lead = new Batch([], size, lsn, lsn, _writingDone);
            }
            else
            {
                Append(lsn, payloadLength, payloadRegister, part1, part2, part3);
                Task durable = _openDone.Task;
                if (_writing) return (lsn, durable);   // a write is in progress: this record rides in the next batch
                _writing = true;
                _handoff = true;   // fsync mode: every batch goes to the writer thread
                Monitor.PulseAll(_lock);
                return (lsn, durable);
            }
        }
        // The leader writes outside the lock, so others keep appending meanwhile.
        WalFormat.WriteHeader(header, lsn, (uint)payloadLength, payloadRegister);
        WriteBatch(lead, header, part1, part2, part3);
        lock (_lock)
        {
            if (_openLength > 0) _handoff = true;   // records came meanwhile: the writer thread writes them
            else _writing = false;
            Monitor.PulseAll(_lock);
        }
        return (lsn, lead.Done.Task);
    }

    /// <summary>Copies a record into the open batch (caller holds <see cref="_lock"/>).</summary>
    private void Append(long lsn, long payloadLength, uint payloadRegister, ReadOnlySpan<byte> part1, ReadOnlySpan<byte> part2, ReadOnlySpan<byte> part3)
    {
        int size = WalFormat.HeaderSize + (int)payloadLength;
        if (_openLength + size > _open.Length)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_open.Length * 2, _openLength + size));
            _open.AsSpan(0, _openLength).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_open);
            _open = larger;
        }
        if (_openLength == 0) _openFirstLsn = lsn;
        Span<byte> record = _open.AsSpan(_openLength, size);
        WalFormat.WriteHeader(record, lsn, (uint)payloadLength, payloadRegister);
        part1.CopyTo(record[WalFormat.HeaderSize..]);
        part2.CopyTo(record[(WalFormat.HeaderSize + part1.Length)..]);
        part3.CopyTo(record[(WalFormat.HeaderSize + part1.Length + part2.Length)..]);
        _openLength += size;
    }

    /// <summary>
    /// A task that completes once every record up to <paramref name="lsn"/> is durable: for a caller whose
    /// outcome depends on records others appended (a retried push that an earlier, still unwritten one made a
    /// no-op).
    /// </summary>
    public Task WhenDurable(long lsn)
    {
        if (Interlocked.Read(ref _durableLsn) >= lsn) return Task.CompletedTask;
        lock (_lock)
        {
            if (_failure is not null) return Task.FromException(new IOException("The write-ahead log failed earlier and takes no more records.", _failure));
            // Records up to _writingLast are in the batch the writer holds; later ones are in the open batch.
            return lsn <= _writingLast ? _writingDone.Task : _openDone.Task;
        }
    }

    /// <summary>
    /// Deletes the segments that hold only records below <paramref name="lsn"/>: a checkpoint that contains
    /// every record before it makes them unnecessary. The newest segment is never deleted.
    /// </summary>
    /// <returns>How many segments were deleted.</returns>
    public int TruncateBefore(long lsn)
    {
        List<(long FirstLsn, string Path)> segments = WalFormat.ListSegments(_directory);
        int deleted = 0;
        // A segment's records end where the next one's begin.
        for (int i = 0; i + 1 < segments.Count && segments[i + 1].FirstLsn <= lsn; i++)
        {
            File.Delete(segments[i].Path);
            deleted++;
        }
        return deleted;
    }

    /// <summary>A batch taken for writing: the bytes of records <see cref="First"/> … <see cref="Last"/>.</summary>
    private readonly record struct Batch(byte[] Bytes, int Length, long First, long Last, TaskCompletionSource Done);

    /// <summary>
    /// Takes the open batch for writing and opens an empty one. The caller holds <see cref="_lock"/> and the write
    /// token, and there are records.
    /// </summary>
    private Batch TakeBatch()
    {
        var batch = new Batch(_open, _openLength, _openFirstLsn, _lastLsn, _openDone);
        _writingDone = _openDone;
        _writingLast = _lastLsn;
        _open = _spare;
        _openLength = 0;
        _openDone = NewBatchTask();
        Monitor.PulseAll(_lock);   // appenders waiting for room
        return batch;
    }

    /// <summary>
    /// Writes a taken batch (and fsyncs it in fsync mode), then completes or faults its task. The caller holds
    /// the write token, not the lock.
    /// </summary>
    private void WriteBatch(Batch batch)
    {
        WriteBatch(batch, batch.Bytes.AsSpan(0, batch.Length), default, default, default);
        _spare = batch.Bytes;
    }

    /// <summary>Writes one batch's bytes, given as parts in order (a leader's lone record: header, then its payload parts).</summary>
    private void WriteBatch(Batch batch, ReadOnlySpan<byte> part0, ReadOnlySpan<byte> part1, ReadOnlySpan<byte> part2, ReadOnlySpan<byte> part3)
    {
        try
        {
            // After a failed batch nothing more is written: later records would follow a gap in the LSNs.
            Exception? failed;
            lock (_lock) failed = _failure;
            if (failed is not null) throw new IOException("An earlier batch failed.", failed);
            WalSegment segment = SegmentFor(batch.First, batch.Length);
            segment.Append(part0, part1, part2, part3);
            if (FlushToDisk) segment.Flush();
            Interlocked.Increment(ref _batches);
            Interlocked.Exchange(ref _durableLsn, batch.Last);
            batch.Done.SetResult();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            lock (_lock)
            {
                _failure ??= e;
                Monitor.PulseAll(_lock);
            }
            batch.Done.SetException(new IOException($"The write-ahead log could not write records {batch.First}…{batch.Last} in {_directory}: {e.Message}", e));
        }
    }

    /// <summary>
    /// The writer thread: takes over the token from a leader that left records behind (and every batch in fsync
    /// mode), writes until none are left and gives the token back; when closing, writes what is left.
    /// </summary>
    private void WriteLoop()
    {
        while (true)
        {
            Batch batch;
            lock (_lock)
            {
                while (!_handoff && !(_closing && !_writing)) Monitor.Wait(_lock);
                if (_openLength == 0)
                {
                    _handoff = false;
                    _writing = false;
                    Monitor.PulseAll(_lock);
                    if (_closing) break;   // everything is written
                    continue;
                }
                _writing = true;
                _handoff = true;   // keep the token until the open batch is empty
                batch = TakeBatch();
            }
            WriteBatch(batch);
        }
        _segment?.Dispose();
    }

    /// <summary>The segment the next batch goes to: the current one, or a new one once it is full.</summary>
    private WalSegment SegmentFor(long firstLsn, int batchLength)
    {
        if (_segment is not null && (_segment.Length == 0 || _segment.Length + batchLength <= _segmentBytes)) return _segment;
        _segment?.Dispose();
        _segment = null;
        _segment = WalSegment.Create(Path.Combine(_directory, WalFormat.SegmentName(firstLsn)));
        // In fsync mode the records about to be acknowledged must not depend on a file name the page cache holds.
        if (FlushToDisk) FileSync.Directory(_directory);
        return _segment;
    }

    private static TaskCompletionSource NewBatchTask() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Writes what is appended, then stops the writer; records appended later are refused.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_closing) return;
            _closing = true;
            Monitor.PulseAll(_lock);
        }
        _writer.Join();
        ArrayPool<byte>.Shared.Return(_open);
        ArrayPool<byte>.Shared.Return(_spare);
    }
}
