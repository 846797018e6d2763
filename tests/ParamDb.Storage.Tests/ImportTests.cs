using System.Runtime.InteropServices;
using ParamDb.Protocol.Safetensors;
using ParamDb.Storage.Import;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Set-rows and whole imports on a real store: rows overwritten with optimizer state reset, other rows kept,
/// batches logged so a reopen without a checkpoint replays them.
/// </summary>
public sealed class ImportTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>adagrad with lr 0.5 and initialAccumulator 0: a first push of g = 1 steps by exactly −0.5 (a = 1, √a = 1).</summary>
    private static TableSchema Adagrad(int dim) => TestStore.Schema(dim, updater: new UpdaterSpec { Kind = UpdaterSpec.Adagrad, Lr = 0.5 });

    /// <summary>A safetensors export of the given rows, written to a file in the test's directory.</summary>
    private string WriteFile(string name, TableSchema schema, ulong[] keys, float[] values)
    {
        var header = SafetensorsHeader.Create(name, schema, keys.Length);
        System.IO.Directory.CreateDirectory(_dir.Directory);
        string path = Path.Combine(_dir.Directory, name + ".safetensors");
        using var file = File.Create(path);
        file.Write(header.Prefix.Span);
        file.Write(MemoryMarshal.AsBytes(keys.AsSpan()));
        file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        return path;
    }

    private static TableImport Check(SafeHandleFile file)
    {
        Assert.True(TableImport.TryCheck(file.Handle, out TableImport? import, out ProtocolError error), error.Detail);
        return import;
    }

    private sealed class SafeHandleFile(string path) : IDisposable
    {
        public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; } = File.OpenHandle(path);

        public void Dispose() => Handle.Dispose();
    }

    [Fact]
    public async Task SetRowsOverwritesTheValuesResetsTheOptimizerStateAndComesBackFromTheLog()
    {
        using (ParamStore store = _dir.Open())
        {
            TableHandle t = TestStore.Create(store, "t", Adagrad(2));
            await store.Push(t, [1, 2], [1, 1, 1, 1]).Durable;
            await store.Push(t, [1, 2], [1, 1, 1, 1]).Durable;   // a = 2 on both rows now
            await store.SetRows(t, [1, 7], [10, 20, 30, 40]);     // 7 is a new row
            Assert.Equal([10f, 20f, 30f, 40f], TestStore.Pull(store, t, 1, 7));
            Assert.Equal(3, store.GetStats(t).Rows);

            // Like a first push: a = 0 + 1, so the step is lr·1/√1 = 0.5. With the old accumulator it would be 0.5/√3.
            await store.Push(t, [1, 2], [1, 1, 1, 1]).Durable;
            Assert.Equal([9.5f, 19.5f], TestStore.Pull(store, t, 1));
            Assert.Equal(-0.5 - 0.5 / Math.Sqrt(2) - 0.5 / Math.Sqrt(3), TestStore.Pull(store, t, 2)[0], 5);   // row 2 kept its accumulator
        }
        using (ParamStore store = _dir.Open())   // no checkpoint was taken: everything comes from the log
        {
            Assert.True(store.TryGetTable("t", out TableHandle? t));
            Assert.Equal([9.5f, 19.5f, 30f, 40f], TestStore.Pull(store, t, 1, 7));
            Assert.Equal(3, store.GetStats(t).Rows);
            await store.Push(t, [7], [1, 1]).Durable;   // the replayed set reset the state too
            Assert.Equal([29.5f, 39.5f], TestStore.Pull(store, t, 7));
        }
    }

    [Fact]
    public async Task AnImportAppliesEveryRowInBatchesAndKeepsTheRowsTheFileDoesNotHold()
    {
        // 40,000 rows of dim 64 (10 MiB) are three 4 MiB batches, so three log records.
        const int rows = 40_000, dim = 64;
        // allowNonFinite: the NaN and -Infinity below are stored bit for bit and counted.
        TableSchema schema = TestStore.Schema(dim) with { AllowNonFinite = true };
        ulong[] keys = TestStore.Keys(1_000, rows);
        var values = new float[rows * dim];
        for (int i = 0; i < values.Length; i++) values[i] = i % 1000 * 0.5f;
        values[5] = float.NaN;
        values[6] = float.NegativeInfinity;
        string path = WriteFile("big", schema, keys, values);

        using (ParamStore store = _dir.Open())
        using (var file = new SafeHandleFile(path))
        {
            TableHandle t = TestStore.Create(store, "big", schema);
            store.Push(t, [0, 1_000], Fill(2, dim, 3f));   // row 0 is not in the file; row 1,000 is
            TableImport import = Check(file);
            Assert.Equal(rows, import.Rows);
            ImportResult result = store.Import(import, t);
            await result.Durable;
            Assert.Equal(rows, result.Rows);
            Assert.Equal(2, result.NonFiniteValues);
            Assert.Equal(rows + 1, store.GetStats(t).Rows);
        }
        using (ParamStore store = _dir.Open())
        {
            Assert.True(store.TryGetTable("big", out TableHandle? t));
            float[] pulled = new float[rows * dim];
            store.Pull(t, keys, pulled);
            Assert.Equal(MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), MemoryMarshal.AsBytes(pulled.AsSpan()).ToArray());   // NaN bit for bit
            Assert.Equal(Fill(1, dim, 3f), TestStore.Pull(store, t, 0));
        }
    }

    [Fact]
    public void AFileWhoseKeysAreNotAscendingFailsTheCheck()
    {
        TableSchema schema = TestStore.Schema(1);
        string path = WriteFile("bad", schema, [1, 5, 3], [0, 0, 0]);
        using var file = new SafeHandleFile(path);
        Assert.False(TableImport.TryCheck(file.Handle, out _, out ProtocolError error));
        Assert.Equal(ProblemCodes.UnsortedKeys, error.Code);
    }

    [Theory]
    [InlineData(0)]            // the first value
    [InlineData(20_000 * 64 - 1)]  // the last value of a file of several 512 KiB check chunks
    [InlineData(9_999 * 64 + 17)]  // a middle row, in the fifth chunk (2,048 rows of dim 64 per chunk)
    public void AFileWithANonFiniteValueFailsTheCheckUnlessItsSchemaAllowsIt(int at)
    {
        const int rows = 20_000, dim = 64;
        ulong[] keys = TestStore.Keys(5, rows);
        var values = new float[rows * dim];
        values[at] = float.PositiveInfinity;
        using (var file = new SafeHandleFile(WriteFile("strict", TestStore.Schema(dim), keys, values)))
        {
            Assert.False(TableImport.TryCheck(file.Handle, out _, out ProtocolError error));
            Assert.Equal(ProblemCodes.NonFiniteValue, error.Code);
            Assert.Contains($"Row {at / dim} (key {keys[at / dim]}), element {at % dim} of the file is +Infinity", error.Detail);
        }
        using (var file = new SafeHandleFile(WriteFile("open", TestStore.Schema(dim) with { AllowNonFinite = true }, keys, values)))
            Assert.Equal(rows, Check(file).Rows);
    }

    [Fact]
    public void ImportingIntoATableOfAnotherSchemaThrows()
    {
        string path = WriteFile("other", TestStore.Schema(2), [1], [0, 0]);
        using ParamStore store = _dir.Open();
        using var file = new SafeHandleFile(path);
        TableHandle t = TestStore.Create(store, "t", TestStore.Schema(3));
        Assert.Throws<ArgumentException>(() => store.Import(Check(file), t));
    }

    private static float[] Fill(int rows, int dim, float value) => Enumerable.Repeat(value, rows * dim).ToArray();
}
