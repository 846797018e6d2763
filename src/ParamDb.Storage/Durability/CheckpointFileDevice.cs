using System.Collections.Concurrent;
using FASTER.core;

namespace ParamDb.Storage.Durability;

/// <summary>
/// A FASTER device over ordinary files for checkpoint files, written and read past the page cache
/// (<see cref="DirectFile"/>), on threads of its own.
/// </summary>
/// <remarks>
/// FASTER 2.6.5's device on Linux opens every file with O_SYNC, so each page of a checkpoint waits for the disk to
/// make it durable. Under the write-ahead log's steady writeback, committing one 4 MiB increment then took 0.6–1 s,
/// and FASTER makes that commit on whichever thread moves the checkpoint to its last phase: often a push, which
/// held its row latches meanwhile, so every push stopped for the whole checkpoint. This device's writes wait for
/// neither a sync nor the page cache: where the durability mode asks for it, the checkpoint syncs its files once,
/// on its own task (<see cref="CheckpointManifest.Sync"/>). It wrote into the page cache at first; on this VM that
/// cost ~2.2 s per GiB of new pages (see <see cref="DirectFile"/>), most of a full checkpoint.
/// <para>
/// The reads and writes themselves run on <see cref="CheckpointIo"/>'s own threads, never on the shared thread
/// pool: a full checkpoint queues all 512 pages of a 1 GiB snapshot at once, and with one pool item per page every
/// pool thread sat blocked in the file system for 4 s while the requests of pushes waited in the queue behind them.
/// Completions go to the thread pool, so FASTER's callbacks never run on the I/O threads nor inside the call that
/// issued the I/O.
/// </para>
/// </remarks>
internal sealed class CheckpointFileDevice : StorageDeviceBase
{
    private readonly ConcurrentDictionary<int, DirectFile> _segments = new();
    private readonly Lock _opening = new();
    private readonly TimeSpan _writeCompletionDelay;
    private readonly WrittenChecksums? _checksums;
    private volatile bool _disposed;

    /// <param name="fileName">The device's base file name; segment files add <c>.N</c>.</param>
    /// <param name="checksums">Where the CRC-32C of each piece written goes; null to keep none.</param>
    /// <param name="writeCompletionDelay">Tests only (<see cref="StoreOptions.CheckpointWriteCompletionDelay"/>).</param>
    public CheckpointFileDevice(string fileName, WrittenChecksums? checksums = null, TimeSpan writeCompletionDelay = default)
        : base(fileName, SectorBytes, Devices.CAPACITY_UNSPECIFIED)
    {
        _checksums = checksums;
        _writeCompletionDelay = writeCompletionDelay;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(fileName))!);
    }

    /// <summary>FASTER aligns every device I/O to this; 512 is what its Linux device reports.</summary>
    private const uint SectorBytes = 512;

    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context) =>
        CheckpointIo.Queue(new Io(this, write: true, segmentId, destinationAddress, sourceAddress, numBytesToWrite, callback, context));

    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context) =>
        CheckpointIo.Queue(new Io(this, write: false, segmentId, sourceAddress, destinationAddress, readLength, callback, context));

    public override void RemoveSegment(int segment)
    {
        if (_segments.TryRemove(segment, out DirectFile? file)) file.Dispose();
        string path = GetSegmentFilename(FileName, segment);
        _checksums?.Forget(path);
        File.Delete(path);
    }

    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        RemoveSegment(segment);
        callback(result);
    }

    /// <summary>A segment not written yet is empty (FASTER sizes a new delta log this way).</summary>
    public override long GetFileSize(int segment)
    {
        if (segmentSize > 0) return segmentSize;
        if (_segments.TryGetValue(segment, out DirectFile? file)) return file.Length;
        var info = new FileInfo(GetSegmentFilename(FileName, segment));
        return info.Exists ? info.Length : 0;
    }

    public override void Reset() => CloseAll();

    /// <summary>Closes the files; an I/O still queued then fails rather than opening them again.</summary>
    public override void Dispose()
    {
        _disposed = true;
        CloseAll();
    }

    private void CloseAll()
    {
        lock (_opening)   // so no segment opens between the flag and the sweep
            foreach (int segment in _segments.Keys)
                if (_segments.TryRemove(segment, out DirectFile? file)) file.Dispose();
    }

    /// <summary>The segment's file, opened once. A read does not create it: a missing file is an error, not an empty one.</summary>
    private DirectFile Segment(int segment, bool create)
    {
        if (_segments.TryGetValue(segment, out DirectFile? file)) return file;
        lock (_opening)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_segments.TryGetValue(segment, out file)) return file;
            string path = GetSegmentFilename(FileName, segment);
            // Pieces recorded for an earlier file of this name (deleted since) must not vouch for the new one.
            if (create && !File.Exists(path)) _checksums?.Forget(path);
            file = DirectFile.Open(path, create ? FileMode.OpenOrCreate : FileMode.Open, FileAccess.ReadWrite);
            _segments[segment] = file;
            return file;
        }
    }

    /// <summary>
    /// Writes <paramref name="source"/> at <paramref name="offset"/> in pieces copied into an aligned buffer, each
    /// checksummed as copied (see <see cref="WrittenChecksums"/> why a copy): the copy is also what lets a page
    /// FASTER did not align go direct.
    /// </summary>
    private void WriteCopies(DirectFile file, ReadOnlySpan<byte> source, long offset)
    {
        AlignedBuffer buffer = AlignedBuffer.Rent();
        try
        {
            for (int done = 0; done < source.Length;)
            {
                Span<byte> piece = buffer.Span[..Math.Min(buffer.Length, source.Length - done)];
                source.Slice(done, piece.Length).CopyTo(piece);
                uint crc = _checksums is null ? 0 : ~Crc32C.Append(~0u, piece);
                file.Write(piece, offset + done);
                _checksums?.Record(file.Path, offset + done, piece.Length, crc);
                done += piece.Length;
            }
        }
        finally
        {
            AlignedBuffer.Return(buffer);
        }
    }

    /// <summary>
    /// One read or write: done on a <see cref="CheckpointIo"/> thread, then completed on the thread pool. Its buffer is
    /// FASTER's and stays pinned until the callback.
    /// </summary>
    internal sealed class Io(CheckpointFileDevice device, bool write, int segment, ulong offset, IntPtr buffer, uint length, DeviceIOCompletionCallback callback, object context)
        : IThreadPoolWorkItem
    {
        private uint _error, _done;

        /// <summary>The I/O itself, on an I/O thread; then queues <see cref="Execute"/>.</summary>
        public unsafe void Run()
        {
            try
            {
                DirectFile file = device.Segment(segment, create: write);
                var span = new Span<byte>((void*)buffer, checked((int)length));
                if (write)
                {
                    device.WriteCopies(file, span, (long)offset);
                    _done = length;
                }
                else
                {
                    // A short read is the end of the file: FASTER gets what is there, as from its own device.
                    _done = (uint)file.ReadFull(span, (long)offset);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                uint code = (uint)(e.HResult & 0xFFFF);
                _error = code == 0 ? uint.MaxValue : code;
            }
            if (write && device._writeCompletionDelay > TimeSpan.Zero)
                _ = Task.Delay(device._writeCompletionDelay).ContinueWith(static (_, io) => ((Io)io!).Execute(), this, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            else
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        /// <summary>FASTER's completion callback, on the thread pool.</summary>
        public void Execute() => callback(_error, _done, context);
    }
}

/// <summary>
/// The threads that do <see cref="CheckpointFileDevice"/>'s reads and writes, shared by every store in the process.
/// Two: a second keeps one slow write (the page cache full of dirty pages) from holding up a recovery's reads.
/// </summary>
internal static class CheckpointIo
{
    private static readonly BlockingCollection<CheckpointFileDevice.Io> Pending = new(new ConcurrentQueue<CheckpointFileDevice.Io>());

    private const int Threads = 2;

    static CheckpointIo()
    {
        for (int i = 0; i < Threads; i++)
        {
            var thread = new Thread(static () =>
            {
                foreach (CheckpointFileDevice.Io io in Pending.GetConsumingEnumerable()) io.Run();
            })
            { IsBackground = true, Name = "ParamDb checkpoint I/O" };
            thread.Start();
        }
    }

    public static void Queue(CheckpointFileDevice.Io io) => Pending.Add(io);
}

/// <summary>
/// FASTER's local file naming and listing for checkpoints, with <see cref="CheckpointFileDevice"/> as the device
/// (see there why not FASTER's own).
/// </summary>
internal sealed class CheckpointDeviceFactory(WrittenChecksums? checksums = null, TimeSpan writeCompletionDelay = default) : INamedDeviceFactory
{
    private readonly LocalStorageNamedDeviceFactory _local = new();
    private string _baseName = "";

    public void Initialize(string baseName)
    {
        _baseName = baseName;
        _local.Initialize(baseName);
    }

    public IDevice Get(FileDescriptor fileInfo) => new CheckpointFileDevice(Path.Combine(_baseName, fileInfo.directoryName, fileInfo.fileName), checksums, writeCompletionDelay);

    public void Delete(FileDescriptor fileInfo)
    {
        // A folder (no file name) goes whole; a file goes as its segment 0, as FASTER's own factory deletes it.
        checksums?.Forget(fileInfo.fileName is null
            ? Path.Combine(_baseName, fileInfo.directoryName)
            : Path.Combine(_baseName, fileInfo.directoryName, fileInfo.fileName + ".0"));
        _local.Delete(fileInfo);
    }

    public IEnumerable<FileDescriptor> ListContents(string path) => _local.ListContents(path);
}
