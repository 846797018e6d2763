using ParamDb.Protocol;

namespace ParamDb.Storage.Tests;

/// <summary>Batches large enough to be split across cores give the same rows as one thread would.</summary>
public sealed class LargeBatchTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void AFiveThousandRowPushAndPullAreExactForExplicitKeysAndRanges()
    {
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "big", TestStore.Schema(8, new InitializerSpec { Kind = InitializerSpec.Constant, Value = 0.5 }));
        const int rows = 5000;
        // Every other key, so a pull of the range in between sees pushed and never-pushed rows interleaved.
        var keys = new ulong[rows];
        var values = new float[rows * 8];
        for (int i = 0; i < rows; i++)
        {
            keys[i] = (ulong)i * 2;
            for (int j = 0; j < 8; j++) values[i * 8 + j] = i + j / 8f;
        }
        store.Push(table, keys, values);
        store.Push(table, keys, values);
        store.PushRange(table, 0, rows, values);

        var explicitRows = new float[rows * 8];
        store.Pull(table, keys, explicitRows);
        var range = new float[2 * rows * 8];
        store.PullRange(table, 0, 2 * rows, range);
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < 8; j++)
            {
                float pushed = i + j / 8f;
                ulong even = (ulong)i * 2;
                // Even key 2i got the explicit push twice; the range push of row r landed on key r.
                float expectedEven = 0.5f + 2 * pushed + (even < rows ? values[(int)even * 8 + j] : 0);
                Assert.Equal(expectedEven, explicitRows[i * 8 + j], 3);
                Assert.Equal(expectedEven, range[(int)even * 8 + j], 3);
                ulong odd = even + 1;
                float expectedOdd = 0.5f + (odd < rows ? values[(int)odd * 8 + j] : 0);
                Assert.Equal(expectedOdd, range[(int)odd * 8 + j], 3);
            }
        }
        Assert.Equal(rows + rows / 2, store.GetStats(table).Rows);
    }
}
