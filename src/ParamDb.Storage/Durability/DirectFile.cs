using System.Collections.Concurrent;
using Microsoft.Win32.SafeHandles;

namespace ParamDb.Storage.Durability;

/// <summary>
/// A file read and written past the page cache (O_DIRECT) where the OS, the file system and the request allow it,
/// and through the page cache where they do not. For bulk files written once and read whole: checkpoints, their
/// checksums, snapshot copies, the write-ahead log's replay.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> On the VMs this runs on, a page the guest touches for the first time costs ~10 µs in the
/// hypervisor, and the guest soon gives clean cached pages back (of 1 GiB written, ~0.1 GiB was still cached
/// 80 s later). So writing 1 GiB into the page cache took 2.1–2.5 s and reading 1 GiB that was not cached 1.7 s,
/// while the same disk took 1 GiB with O_DIRECT in 0.3–0.6 s and gave it back in 0.5–0.95 s (<c>dd</c> and this class,
/// same day). A 1 GiB full checkpoint spent most of its 2.2–5.3 s there.</para>
/// <para><b>What direct I/O needs.</b> The buffer's address, the file offset and the length must be multiples of
/// the device's logical block size (<see cref="Alignment"/>); a request that is not goes through a second,
/// ordinary handle on the same file, and so does every request after the file system refused one (a disk with
/// 4 KiB logical blocks answers 512-byte-aligned requests with EINVAL). Linux keeps the two coherent: a direct
/// read first writes back dirty cached pages of its range, a direct write drops them. A short read at the end of
/// the file is allowed; a direct write never extends a file by a partial block.</para>
/// <para>What a completed write means is unchanged: the bytes were handed to the OS (here, to the device's
/// queue); <see cref="Flush"/> makes them durable.</para>
/// </remarks>
internal sealed class DirectFile : IDisposable
{
    /// <summary>What direct requests are aligned to: 512 bytes, the logical block size of the disks seen here.</summary>
    public const int Alignment = 512;

    private readonly SafeFileHandle _buffered;
    private readonly SafeFileHandle? _direct;
    private volatile bool _refused;

    private DirectFile(string path, SafeFileHandle buffered, SafeFileHandle? direct)
    {
        Path = path;
        _buffered = buffered;
        _direct = direct;
    }

    /// <summary>The file's path as opened.</summary>
    public string Path { get; }

    /// <summary>Whether aligned requests still go past the page cache.</summary>
    public bool IsDirect => _direct is not null && !_refused;

    /// <summary>
    /// Opens <paramref name="path"/> as <see cref="File.OpenHandle"/> would (same modes, same exceptions), plus a
    /// direct handle where one can be had.
    /// </summary>
    public static DirectFile Open(string path, FileMode mode, FileAccess access, FileShare share = FileShare.ReadWrite | FileShare.Delete)
    {
        SafeFileHandle buffered = File.OpenHandle(path, mode, access, share);
        try
        {
            return new DirectFile(path, buffered, TryOpenDirect(path, access));
        }
        catch
        {
            buffered.Dispose();
            throw;
        }
    }

    /// <summary>The file's length.</summary>
    public long Length => RandomAccess.GetLength(_buffered);

    /// <summary>Reads at <paramref name="offset"/>; fewer bytes than asked only at the end of the file.</summary>
    public int Read(Span<byte> destination, long offset)
    {
        if (Direct(destination, offset) is { } handle)
        {
            try
            {
                return RandomAccess.Read(handle, destination, offset);
            }
            catch (IOException e) when (e.HResult == Einval)
            {
                Refused();
            }
        }
        return RandomAccess.Read(_buffered, destination, offset);
    }

    /// <summary>Reads at <paramref name="offset"/> until <paramref name="destination"/> is full or the file ends.</summary>
    /// <returns>The bytes read.</returns>
    public int ReadFull(Span<byte> destination, long offset)
    {
        int done = 0, n;
        while (done < destination.Length && (n = Read(destination[done..], offset + done)) > 0) done += n;
        return done;
    }

    /// <summary>Writes all of <paramref name="source"/> at <paramref name="offset"/>.</summary>
    public void Write(ReadOnlySpan<byte> source, long offset)
    {
        if (Direct(source, offset) is { } handle)
        {
            try
            {
                RandomAccess.Write(handle, source, offset);
                return;
            }
            catch (IOException e) when (e.HResult == Einval)
            {
                Refused();
            }
        }
        RandomAccess.Write(_buffered, source, offset);
    }

    /// <summary>fsyncs the file: whatever either handle wrote, and its length.</summary>
    public void Flush() => RandomAccess.FlushToDisk(_buffered);

    public void Dispose()
    {
        _direct?.Dispose();
        _buffered.Dispose();
    }

    /// <summary>The direct handle when this request can use it.</summary>
    private SafeFileHandle? Direct(ReadOnlySpan<byte> span, long offset)
    {
        SafeFileHandle? handle = _direct;
        if (handle is null || _refused) return null;
        unsafe
        {
            fixed (byte* address = span)
                return ((nint)address | (nint)offset | span.Length) % Alignment == 0 ? handle : null;
        }
    }

    /// <summary>
    /// The file system refused an aligned direct request: every later one takes the page cache. The handle stays
    /// open until <see cref="Dispose"/>, as another thread may be in a request on it.
    /// </summary>
    private void Refused() => _refused = true;

    /// <summary>
    /// Copies <paramref name="source"/> to <paramref name="target"/>, which must not exist, in 4 MiB pieces past the
    /// page cache; the target is not synced.
    /// </summary>
    public static void Copy(string source, string target)
    {
        using DirectFile from = Open(source, FileMode.Open, FileAccess.Read);
        using DirectFile to = Open(target, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        AlignedBuffer buffer = AlignedBuffer.Rent();
        try
        {
            long offset = 0;
            int n;
            while ((n = from.ReadFull(buffer.Span, offset)) > 0)
            {
                // The last piece may end inside a block: Write takes that through the page cache.
                to.Write(buffer.Span[..n], offset);
                offset += n;
                if (n < buffer.Span.Length) break;
            }
        }
        finally
        {
            AlignedBuffer.Return(buffer);
        }
    }

    private const int Einval = 22;

    /// <summary>A direct handle on an existing file, or null: not Linux, an architecture whose flag is not known
    /// here, or a file system without O_DIRECT (e.g. an older tmpfs).</summary>
    private static SafeFileHandle? TryOpenDirect(string path, FileAccess access)
    {
        if (!OperatingSystem.IsLinux() || Posix.DirectFlag == 0) return null;
        int flags = (access == FileAccess.Read ? Posix.ReadOnly : Posix.ReadWrite) | Posix.DirectFlag | Posix.CloseOnExec;
        int fd = Posix.Open(path, flags);
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }
}

/// <summary>
/// A 4 MiB pinned buffer aligned for direct I/O, from a small pool: checksums and copies of checkpoints take one
/// each, a few at a time.
/// </summary>
internal sealed class AlignedBuffer
{
    /// <summary>Bytes per buffer: 4 MiB, the size at which direct reads and writes ran at the disk's full rate.</summary>
    public const int Bytes = 4 << 20;

    private const int MaxPooled = 4;
    private static readonly ConcurrentQueue<AlignedBuffer> Pool = new();

    private readonly byte[] _array;
    private readonly int _start;

    private AlignedBuffer(int length)
    {
        _array = GC.AllocateUninitializedArray<byte>(length + DirectFile.Alignment, pinned: true);
        unsafe
        {
            fixed (byte* p = _array)
                _start = (int)((DirectFile.Alignment - (nint)p % DirectFile.Alignment) % DirectFile.Alignment);
        }
        Length = length;
    }

    /// <summary>The buffer's bytes; its first byte is aligned.</summary>
    public Span<byte> Span => _array.AsSpan(_start, Length);

    /// <summary>The same bytes as <see cref="Span"/>.</summary>
    public Memory<byte> Memory => _array.AsMemory(_start, Length);

    /// <summary>Its length.</summary>
    public int Length { get; }

    /// <summary>An aligned buffer of <paramref name="length"/> bytes outside the pool (e.g. a replay's chunks).</summary>
    public static AlignedBuffer Allocate(int length) => new(length);

    /// <summary>A <see cref="Bytes"/>-byte buffer from the pool, or a new one.</summary>
    public static AlignedBuffer Rent() => Pool.TryDequeue(out AlignedBuffer? buffer) ? buffer : new AlignedBuffer(Bytes);

    /// <summary>Gives a rented buffer back; beyond a few, it is left to the GC.</summary>
    public static void Return(AlignedBuffer buffer)
    {
        if (buffer.Length == Bytes && Pool.Count < MaxPooled) Pool.Enqueue(buffer);
    }
}
