using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Files read and written past the page cache where the request allows it: aligned requests go direct, others
/// through the page cache, and either way the bytes are the ones written; copies and checksums of files whose
/// length is not a multiple of a block come out whole.
/// </summary>
public sealed class DirectFileTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "paramdb-direct-tests", Guid.NewGuid().ToString("N"));

    public DirectFileTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++) bytes[i] = (byte)(i * 31 + seed + (i >> 9));
        return bytes;
    }

    [Fact]
    public void AlignedAndUnalignedRequestsMixOnOneFileAndReadBackWhatWasWritten()
    {
        string path = Path.Combine(_directory, "mixed");
        AlignedBuffer buffer = AlignedBuffer.Allocate(64 << 10);
        byte[] expected = Pattern(64 << 10, seed: 5);
        using (DirectFile file = DirectFile.Open(path, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            // On Linux with a file system that takes O_DIRECT (the test machines' ext4), aligned requests go direct.
            if (OperatingSystem.IsLinux()) Assert.True(file.IsDirect, "an aligned request should be able to go past the page cache");
            expected.AsSpan(0, 32 << 10).CopyTo(buffer.Span);
            file.Write(buffer.Span[..(32 << 10)], 0);                        // aligned: direct
            file.Write(expected.AsSpan(32 << 10, 1000), 32 << 10);           // unaligned length: page cache
            file.Write(expected.AsSpan((32 << 10) + 1000), (32 << 10) + 1000); // unaligned offset and buffer
            Assert.True(!OperatingSystem.IsLinux() || file.IsDirect, "unaligned requests must not turn direct I/O off");
            Assert.Equal(64 << 10, file.Length);

            buffer.Span.Clear();
            Assert.Equal(64 << 10, file.ReadFull(buffer.Span, 0));          // aligned: direct, sees the cached writes too
            Assert.True(expected.AsSpan().SequenceEqual(buffer.Span));
            var odd = new byte[777];
            Assert.Equal(777, file.ReadFull(odd, 12345));
            Assert.True(expected.AsSpan(12345, 777).SequenceEqual(odd));
        }
        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void AReadPastTheEndIsShortAndAMissingFileThrowsAsFileOpenHandleWould()
    {
        string path = Path.Combine(_directory, "short");
        File.WriteAllBytes(path, Pattern(1500, seed: 1));   // not a whole number of blocks
        AlignedBuffer buffer = AlignedBuffer.Allocate(4096);
        using (DirectFile file = DirectFile.Open(path, FileMode.Open, FileAccess.Read))
        {
            Assert.Equal(1500, file.ReadFull(buffer.Span, 0));
            Assert.True(Pattern(1500, seed: 1).AsSpan().SequenceEqual(buffer.Span[..1500]));
            Assert.Equal(0, file.ReadFull(buffer.Span, 4096));
        }
        Assert.Throws<FileNotFoundException>(() => DirectFile.Open(Path.Combine(_directory, "absent"), FileMode.Open, FileAccess.Read));
        Assert.False(File.Exists(Path.Combine(_directory, "absent")));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(512)]
    [InlineData(AlignedBuffer.Bytes)]              // exactly one piece
    [InlineData(AlignedBuffer.Bytes * 2 + 1234)]   // several pieces and a tail inside a block
    public void ACopyIsByteForByteAndItsChecksumIsTheOriginals(int length)
    {
        string source = Path.Combine(_directory, "source"), target = Path.Combine(_directory, "target");
        byte[] bytes = Pattern(length, seed: length);
        File.WriteAllBytes(source, bytes);

        DirectFile.Copy(source, target);

        Assert.Equal(bytes, File.ReadAllBytes(target));
        uint expected = ~Crc32C.Append(~0u, bytes);
        Assert.Equal((expected, (long)length), Crc32C.OfFile(target));
        // A prefix that ends inside a piece and inside a block.
        int prefix = Math.Max(0, length - 777);
        Assert.Equal((~Crc32C.Append(~0u, bytes.AsSpan(0, prefix)), (long)prefix), Crc32C.OfFile(target, prefix));
        Assert.Throws<IOException>(() => DirectFile.Copy(source, target));   // never over an existing file
    }
}
