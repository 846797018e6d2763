namespace ParamDb.Storage.Tests;

/// <summary>A fresh data directory per test, deleted afterwards, and the stores opened on it.</summary>
public sealed class TestStore : IDisposable
{
    /// <summary>32 MiB of log memory: enough for every in-memory test, small enough for parallel tests on 2 cores.</summary>
    public const long DefaultMemory = 32L << 20;

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "paramdb-storage-tests", Guid.NewGuid().ToString("N"));

    /// <summary>Opens a store on <see cref="Directory"/>; with <c>incremental: false</c> every checkpoint is a full
    /// one in its own folder (tests of the fall back between folders).</summary>
    public ParamStore Open(long memoryBytes = DefaultMemory, int checkpointsToKeep = 2, DurabilityMode durability = DurabilityMode.Wal, long walSegmentBytes = 64L << 20, bool incremental = true) =>
        ParamStore.Open(new StoreOptions
        {
            DataDirectory = Directory,
            MemoryBytes = memoryBytes,
            CheckpointsToKeep = checkpointsToKeep,
            Durability = durability,
            WalSegmentBytes = walSegmentBytes,
            IncrementalCheckpoints = incremental,
        });

    /// <summary>The write-ahead log's segment files, oldest first.</summary>
    public string[] WalSegments() =>
        System.IO.Directory.Exists(WalDirectory) ? [.. System.IO.Directory.GetFiles(WalDirectory, "wal-*.log").Order(StringComparer.Ordinal)] : [];

    public string WalDirectory => Path.Combine(Directory, "wal");

    public void Dispose()
    {
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }

    public static TableSchema Schema(int dim, InitializerSpec? init = null, UpdaterSpec? updater = null)
    {
        Assert.True(new TableSchema { Dim = dim, Init = init, Updater = updater }.TryNormalize(out TableSchema normalized, out ProtocolError error), error.Detail);
        return normalized;
    }

    public static TableHandle Create(ParamStore store, string name, TableSchema schema)
    {
        Assert.Equal(CreateTableOutcome.Created, store.CreateTable(name, schema, out TableHandle table));
        return table;
    }

    public static float[] Pull(ParamStore store, TableHandle table, params ulong[] keys)
    {
        var values = new float[keys.Length * table.Dim];
        store.Pull(table, keys, values);
        return values;
    }

    public static ulong[] Keys(ulong first, int count)
    {
        var keys = new ulong[count];
        for (int i = 0; i < count; i++) keys[i] = first + (ulong)i;
        return keys;
    }
}
