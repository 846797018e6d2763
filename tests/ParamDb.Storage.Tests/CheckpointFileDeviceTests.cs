using System.Runtime.InteropServices;
using FASTER.core;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Tests;

/// <summary>
/// The device checkpoints are written through, driven through FASTER's <see cref="IDevice"/> interface as FASTER
/// drives it: bytes come back where they were written, segment by segment; a read past the end is short; a read of
/// a file that is not there is an error, not an empty file; completions never run inside the call.
/// </summary>
public sealed unsafe class CheckpointFileDeviceTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "paramdb-device-tests", Guid.NewGuid().ToString("N"));
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private CheckpointFileDevice Open(long segmentSize = -1)
    {
        var device = new CheckpointFileDevice(Path.Combine(_directory, "sub", "data.dat"));
        device.Initialize(segmentSize);
        return device;
    }

    /// <summary>A sector-aligned native buffer, as FASTER hands its devices.</summary>
    private sealed class Buffer(int length) : IDisposable
    {
        public readonly byte* Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)length, 512);
        public Span<byte> Span => new(Pointer, length);
        public void Dispose() => NativeMemory.AlignedFree(Pointer);
    }

    private sealed class Completion
    {
        private readonly TaskCompletionSource<(uint Error, uint Bytes)> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public bool Issued;
        public bool CompletedInsideCall;

        public void Callback(uint error, uint bytes, object context)
        {
            if (!Volatile.Read(ref Issued)) CompletedInsideCall = true;
            _done.SetResult((error, bytes));
        }

        public (uint Error, uint Bytes) Wait() => _done.Task.WaitAsync(Deadline).GetAwaiter().GetResult();
    }

    private static (uint Error, uint Bytes, bool Inside) Write(IDevice device, Buffer source, ulong address, uint length)
    {
        var completion = new Completion();
        device.WriteAsync((IntPtr)source.Pointer, address, length, completion.Callback, null);
        Volatile.Write(ref completion.Issued, true);
        (uint error, uint bytes) = completion.Wait();
        return (error, bytes, completion.CompletedInsideCall);
    }

    private static (uint Error, uint Bytes) Read(IDevice device, int segment, ulong offset, Buffer destination, uint length)
    {
        var completion = new Completion();
        device.ReadAsync(segment, offset, (IntPtr)destination.Pointer, length, completion.Callback, null);
        Volatile.Write(ref completion.Issued, true);
        return completion.Wait();
    }

    private static void Fill(Span<byte> span, int seed)
    {
        for (int i = 0; i < span.Length; i++) span[i] = (byte)(i * 7 + seed);
    }

    [Fact]
    public void BytesWrittenAcrossSegmentsComeBackFromTheirSegmentFiles()
    {
        using CheckpointFileDevice device = Open(segmentSize: 4096);
        using var page = new Buffer(1024);
        using var read = new Buffer(1024);
        // Addresses in segments 0 and 2; segment 1 is never written.
        ulong[] addresses = [0, 3072, 8192 + 512];
        for (int i = 0; i < addresses.Length; i++)
        {
            Fill(page.Span, seed: i + 1);
            (uint error, uint bytes, bool inside) = Write(device, page, addresses[i], 1024);
            Assert.Equal((0u, 1024u, false), (error, bytes, inside));
        }

        for (int i = 0; i < addresses.Length; i++)
        {
            Fill(page.Span, seed: i + 1);
            read.Span.Clear();
            (uint error, uint bytes) = Read(device, (int)(addresses[i] / 4096), addresses[i] % 4096, read, 1024);
            Assert.Equal((0u, 1024u), (error, bytes));
            Assert.True(page.Span.SequenceEqual(read.Span), $"bytes at address {addresses[i]} differ");
        }
        Assert.True(File.Exists(Path.Combine(_directory, "sub", "data.dat.0")));
        Assert.True(File.Exists(Path.Combine(_directory, "sub", "data.dat.2")));
        Assert.False(File.Exists(Path.Combine(_directory, "sub", "data.dat.1")));
        Assert.Equal(4096, device.GetFileSize(0));   // a segmented device reports its segment size
    }

    [Fact]
    public void AReadPastTheEndIsShortAndAMissingFileIsAnErrorThatCreatesNothing()
    {
        using CheckpointFileDevice device = Open();
        using var page = new Buffer(1024);
        using var read = new Buffer(2048);
        Assert.Equal(0, device.GetFileSize(0));   // not written yet: empty, and still not created
        Assert.False(File.Exists(Path.Combine(_directory, "sub", "data.dat.0")));

        Fill(page.Span, seed: 9);
        Assert.Equal((0u, 1024u, false), Write(device, page, 512, 1024));
        Assert.Equal(1536, device.GetFileSize(0));
        Assert.Equal((0u, 1024u), Read(device, 0, 512, read, 2048));   // only what is there
        Assert.True(page.Span.SequenceEqual(read.Span[..1024]));

        (uint error, uint bytes) = Read(device, 5, 0, read, 512);
        Assert.NotEqual(0u, error);
        Assert.Equal(0u, bytes);
        Assert.False(File.Exists(Path.Combine(_directory, "sub", "data.dat.5")));
    }

    [Fact]
    public void RemovingASegmentDeletesItsFileAndAReopenedDeviceReadsWhatWasWritten()
    {
        using var page = new Buffer(512);
        Fill(page.Span, seed: 3);
        using (CheckpointFileDevice device = Open(segmentSize: 1024))
        {
            Assert.Equal(0u, Write(device, page, 0, 512).Error);
            Assert.Equal(0u, Write(device, page, 1024, 512).Error);
            device.RemoveSegment(0);
            Assert.False(File.Exists(Path.Combine(_directory, "sub", "data.dat.0")));
        }

        using CheckpointFileDevice reopened = Open(segmentSize: 1024);
        using var read = new Buffer(512);
        Assert.Equal((0u, 512u), Read(reopened, 1, 0, read, 512));
        Assert.True(page.Span.SequenceEqual(read.Span));
    }

    [Fact]
    public void WrittenChecksumsVouchForWhatWasWrittenAndForgetAFileDeletedAndWrittenAnew()
    {
        var checksums = new WrittenChecksums();
        string path = Path.Combine(_directory, "sub", "data.dat.0");
        using var page = new Buffer(512);
        using (var device = new CheckpointFileDevice(Path.Combine(_directory, "sub", "data.dat"), checksums))
        {
            device.Initialize(-1);
            Fill(page.Span, seed: 1);
            Assert.Equal(0u, Write(device, page, 512, 512).Error);   // out of order
            Fill(page.Span, seed: 2);
            Assert.Equal(0u, Write(device, page, 0, 512).Error);
        }
        Assert.True(checksums.TryGet(path, out uint crc, out long length));
        Assert.Equal(Crc32C.OfFile(path), (crc, length));

        // A new file of the same name, written only in its second half (the first is a hole of zeros).
        File.Delete(path);
        using (var device = new CheckpointFileDevice(Path.Combine(_directory, "sub", "data.dat"), checksums))
        {
            device.Initialize(-1);
            Fill(page.Span, seed: 3);
            Assert.Equal(0u, Write(device, page, 512, 512).Error);
        }
        Assert.False(checksums.TryGet(path, out _, out _));
        Assert.Equal(Crc32C.OfFile(path), checksums.Of(path));
    }

    [Fact]
    public void AWriteAfterDisposeFailsAndOpensNoFile()
    {
        CheckpointFileDevice device = Open();
        using var page = new Buffer(512);
        Assert.Equal(0u, Write(device, page, 0, 512).Error);
        device.Dispose();

        (uint error, uint bytes, _) = Write(device, page, 0, 512);
        Assert.NotEqual(0u, error);
        Assert.Equal(0u, bytes);
        // The file written before is still whole and closed: it can be deleted and is not recreated.
        File.Delete(Path.Combine(_directory, "sub", "data.dat.0"));
        Assert.NotEqual(0u, Write(device, page, 0, 512).Error);
        Assert.False(File.Exists(Path.Combine(_directory, "sub", "data.dat.0")));
    }
}
