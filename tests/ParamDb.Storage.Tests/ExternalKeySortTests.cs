using ParamDb.Storage.Export;

namespace ParamDb.Storage.Tests;

/// <summary>The export's external sort, with runs small enough to force dozens of run files and merge passes.</summary>
public sealed class ExternalKeySortTests : IDisposable
{
    private readonly TestStore _dir = new();

    private string SortDirectory => Path.Combine(_dir.Directory, "sort");

    public void Dispose() => _dir.Dispose();

    /// <summary>Random keys with repeats, plus the extremes of the key space, in a fixed order.</summary>
    private static ulong[] KeysWithEdges(int count, int seed)
    {
        var random = new Random(seed);
        var keys = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            keys[i] = (i % 4) switch
            {
                0 => (ulong)random.NextInt64() << 1 | (uint)random.Next(2),   // anywhere in 0 … 2^64-1
                1 => (ulong)random.Next(64),                                   // near 0, many repeats
                2 => ulong.MaxValue - (ulong)random.Next(64),                  // near 2^64-1, many repeats
                _ => keys[random.Next(Math.Max(1, i))],                        // a key seen before
            };
        }
        keys[0] = 0;
        keys[count / 2] = ulong.MaxValue;
        keys[count - 1] = 1UL << 63;
        return keys;
    }

    private static ulong[] SortedDistinct(ulong[] keys)
    {
        var set = new HashSet<ulong>(keys);
        var expected = new ulong[set.Count];
        set.CopyTo(expected);
        Array.Sort(expected);
        return expected;
    }

    /// <summary>Feeds <paramref name="keys"/> in chunks of uneven sizes, so chunk and run boundaries fall everywhere.</summary>
    private static void Feed(ExternalKeySort sort, ulong[] keys)
    {
        int[] sizes = [1, 7, 1000, 4096, 333];
        for (int at = 0, i = 0; at < keys.Length; i++)
        {
            int n = Math.Min(sizes[i % sizes.Length], keys.Length - at);
            sort.Accept(keys.AsSpan(at, n));
            at += n;
        }
    }

    private static ulong[] ReadAll(ExternalKeySort sort, int chunk = 1000)
    {
        var all = new List<ulong>();
        var buffer = new ulong[chunk];
        using SortedKeyReader reader = sort.OpenReader();
        int n;
        while ((n = reader.Read(buffer)) > 0) all.AddRange(buffer.AsSpan(0, n));
        return [.. all];
    }

    [Theory]
    [InlineData(2)]     // a merge tree many passes deep
    [InlineData(4)]
    [InlineData(64)]    // the default fan-in: one merge
    public void DozensOfRunsMergeIntoExactlyTheSortedDistinctKeys(int fanIn)
    {
        ulong[] keys = KeysWithEdges(60_000, seed: fanIn);
        using var sort = new ExternalKeySort(SortDirectory, runKeys: 1000, fanIn);
        Feed(sort, keys);
        long count = sort.Finish();

        ulong[] expected = SortedDistinct(keys);
        Assert.Equal(60, sort.RunsWritten);
        Assert.Equal(60_000, sort.KeysAdded);
        Assert.Equal(expected.Length, count);
        Assert.Equal(expected, ReadAll(sort));
        Assert.Equal(0ul, expected[0]);
        Assert.Equal(ulong.MaxValue, expected[^1]);
        // One sorted file is left; every run and intermediate merge is gone.
        Assert.Single(Directory.GetFiles(SortDirectory));
        Assert.Equal(8 * count, new FileInfo(Directory.GetFiles(SortDirectory)[0]).Length);
    }

    [Theory]
    [InlineData(100_000)]   // one run, in memory
    [InlineData(1000)]      // runs merged on disk, then filtered
    public void ExcludedKeysAreLeftOutWhetherAddedBeforeOrAfterAndCounted(int runKeys)
    {
        ulong[] keys = KeysWithEdges(20_000, seed: 3);
        ulong[] expected = SortedDistinct(keys);
        // Every third distinct key, the edges among them, plus a key that was never added.
        var excluded = new HashSet<ulong> { 12345678901 };
        for (int i = 0; i < expected.Length; i += 3) excluded.Add(expected[i]);
        excluded.Add(ulong.MaxValue);
        using var sort = new ExternalKeySort(SortDirectory, runKeys, fanIn: 4);
        Feed(sort, keys[..10_000]);
        sort.Exclude(excluded);
        Feed(sort, keys[10_000..]);
        long count = sort.Finish();
        ulong[] kept = Array.FindAll(expected, k => !excluded.Contains(k));
        Assert.Equal(kept.Length, count);
        Assert.Equal(kept, ReadAll(sort));
        Assert.Throws<InvalidOperationException>(() => sort.Exclude([1]));
    }

    [Fact]
    public void TheSortedKeysCanBeReadTwiceInAnyChunkSize()
    {
        ulong[] keys = KeysWithEdges(5_000, seed: 7);
        using var sort = new ExternalKeySort(SortDirectory, runKeys: 700, fanIn: 3);
        Feed(sort, keys);
        sort.Finish();
        ulong[] expected = SortedDistinct(keys);
        Assert.Equal(expected, ReadAll(sort, chunk: 1));
        Assert.Equal(expected, ReadAll(sort, chunk: 4096));
    }

    [Fact]
    public void KeysRepeatedAcrossRunsAreKeptOnce()
    {
        ulong[] keys = TestStore.Keys(1_000_000, 500);
        using var sort = new ExternalKeySort(SortDirectory, runKeys: 500, fanIn: 4);
        for (int copy = 0; copy < 5; copy++) sort.Accept(keys);   // five runs holding the same 500 keys

        Assert.Equal(500, sort.Finish());
        Assert.Equal(5, sort.RunsWritten);
        Assert.Equal(keys, ReadAll(sort));
    }

    [Fact]
    public void EmptyInputSortsToNoKeysWithoutTouchingTheDisk()
    {
        using var sort = new ExternalKeySort(SortDirectory, runKeys: 16);
        Assert.Equal(0, sort.Finish());
        Assert.Empty(ReadAll(sort));
        Assert.False(Directory.Exists(SortDirectory));
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(ulong.MaxValue)]
    public void OneKeySortsToItself(ulong key)
    {
        using var sort = new ExternalKeySort(SortDirectory, runKeys: 16);
        sort.Accept([key]);
        Assert.Equal(1, sort.Finish());
        Assert.Equal([key], ReadAll(sort));
    }

    [Fact]
    public void KeysThatFitOneRunAreSortedInMemory()
    {
        ulong[] keys = KeysWithEdges(1000, seed: 3);
        using var sort = new ExternalKeySort(SortDirectory, runKeys: 1000);
        sort.Accept(keys);
        sort.Finish();
        Assert.Equal(SortedDistinct(keys), ReadAll(sort));
        Assert.Equal(0, sort.RunsWritten);
        Assert.False(Directory.Exists(SortDirectory));
    }

    [Fact]
    public void DisposeDeletesEveryRunWhetherOrNotTheSortFinished()
    {
        using (var finished = new ExternalKeySort(SortDirectory, runKeys: 100))
        {
            Feed(finished, KeysWithEdges(1000, seed: 1));
            finished.Finish();
            Assert.True(Directory.Exists(SortDirectory));
        }
        Assert.False(Directory.Exists(SortDirectory));

        var abandoned = new ExternalKeySort(SortDirectory, runKeys: 100);
        Feed(abandoned, KeysWithEdges(1000, seed: 2));
        Assert.Equal(9, Directory.GetFiles(SortDirectory).Length);   // the tenth run is still in the buffer
        abandoned.Dispose();
        Assert.False(Directory.Exists(SortDirectory));
    }

    [Fact]
    public void AFinishedSortTakesNoMoreKeys()
    {
        using var sort = new ExternalKeySort(SortDirectory, runKeys: 16);
        sort.Accept([3, 1, 2]);
        sort.Finish();
        Assert.Throws<InvalidOperationException>(() => sort.Accept([4]));
        Assert.Equal([1ul, 2, 3], ReadAll(sort));
    }
}
