using System.Runtime.InteropServices;
using ParamDb.Cluster.Files;
using ParamDb.Protocol.Safetensors;

namespace ParamDb.Cluster.Tests.Files;

/// <summary>
/// The merge of nodes' sorted exports into one file, over in-memory streams: the same bytes as one file of all the
/// rows, whatever the windows' refills; a key on two nodes and a node's stream cut short stop it.
/// </summary>
public sealed class MergedExportTests : IDisposable
{
    private static readonly TableSchema Schema = new() { Dim = 3 };
    private readonly string _dir = Directory.CreateTempSubdirectory("paramdb-merge-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(0, 0, 0)]
    [InlineData(5, 0, 2)]
    [InlineData(40_000, 25_000, 30_000)]   // several 256 KiB windows a node, in both phases
    public async Task MergingNodesSortedExportsGivesTheFileOfAllTheirRows(int a, int b, int c)
    {
        var random = new Random(a + b + c);
        ulong[] all = [.. Enumerable.Range(0, a + b + c).Select(_ => (ulong)random.NextInt64(1L << 50)).Distinct().Order()];
        float[] values = [.. Enumerable.Range(0, all.Length * 3).Select(i => (float)i)];
        // Deal the keys to three nodes at random, as a ring would.
        var parts = new List<int>[3] { [], [], [] };
        for (int i = 0; i < all.Length; i++) parts[random.Next(3)].Add(i);

        byte[] merged = await MergeAsync([.. parts.Select(p => File([.. p.Select(i => all[i])], [.. p.SelectMany(i => values.AsSpan(i * 3, 3).ToArray())]))]);
        Assert.Equal(File(all, values), merged);
    }

    [Fact]
    public async Task AKeyOnTwoNodesStopsTheMergeNamingIt()
    {
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => MergeAsync([File([1, 7, 9], new float[9]), File([2, 7], new float[6])]));
        Assert.Contains("Key 7", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ANodesStreamCutShortStopsTheMergeNamingTheNode()
    {
        byte[] whole = File([1, 2, 3, 4], new float[12]);
        byte[] cut = whole[..^10];
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => MergeAsync([File([5], new float[3]), cut], lengths: [null, whole.Length]));
        Assert.Contains("'n1'", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A single node's export file of these rows.</summary>
    private static byte[] File(ulong[] keys, float[] values)
    {
        var header = SafetensorsHeader.Create("t", Schema, keys.Length);
        using var file = new MemoryStream();
        file.Write(header.Prefix.Span);
        file.Write(MemoryMarshal.AsBytes(keys.AsSpan()));
        file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        return file.ToArray();
    }

    private async Task<byte[]> MergeAsync(byte[][] files, int?[]? lengths = null)
    {
        var sources = new ExportSource[files.Length];
        for (int i = 0; i < files.Length; i++)
        {
            // A stream that returns at most 1,000 bytes a read, so windows refill mid-key and mid-row.
            var body = new TrickleStream(files[i]);
            sources[i] = await ExportSource.OpenAsync($"n{i}", body, lengths?[i] ?? files[i].Length, () => ValueTask.CompletedTask, CancellationToken.None);
        }
        var order = new FileStream(Path.Combine(_dir, Guid.NewGuid().ToString("N")), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 4096, FileOptions.DeleteOnClose);
        using MergedExport merge = MergedExport.Over(sources, order, "t", Schema);
        using var output = new MemoryStream();
        await merge.WriteToAsync(output);
        Assert.Equal(merge.Length, output.Length);
        return output.ToArray();
    }

    private sealed class TrickleStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, 1000)], cancellationToken);
    }
}
