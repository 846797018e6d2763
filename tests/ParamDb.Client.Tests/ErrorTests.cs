using ParamDb.Client;
using ParamDb.Protocol;

namespace ParamDb.Client.Tests;

/// <summary>Refusals: the server's surface as <see cref="ParamDbException"/> with their code; the client's own as <see cref="ArgumentException"/>.</summary>
[Collection(ServerCollection.Name)]
public sealed class ErrorTests(ServerFixture fixture)
{
    private ParamDbClient Db => fixture.Client;

    private async Task<string> NewTableAsync(int dim, ulong? maxKey = null)
    {
        string name = ServerFixture.NewTable("e");
        await Db.CreateTableAsync(name, new TableSchema { Dim = dim, MaxKey = maxKey });
        return name;
    }

    [Theory]
    [InlineData(ParamDbCompression.None)]
    [InlineData(ParamDbCompression.Lz4)]
    public async Task PushAndPullOfAMissingTableThrowTableNotFound(ParamDbCompression compression)
    {
        var db = fixture.For(compression);

        var push = await Assert.ThrowsAsync<ParamDbException>(() => db.PushAsync("missing-table", new ulong[] { 1 }, new float[] { 1 }));
        var pull = await Assert.ThrowsAsync<ParamDbException>(() => db.PullAsync("missing-table", new ulong[] { 1 }, new float[1]));
        var row = await Assert.ThrowsAsync<ParamDbException>(() => db.GetRowAsync("missing-table", 1));

        foreach (var e in new[] { push, pull, row })
        {
            Assert.Equal(ProblemCodes.TableNotFound, e.Code);
            Assert.Equal(404, e.Status);
        }
    }

    [Fact]
    public async Task PushOfTheWrongDimThrowsDimMismatch()
    {
        string table = await NewTableAsync(dim: 4);

        var e = await Assert.ThrowsAsync<ParamDbException>(() => Db.PushAsync(table, new ulong[] { 1, 2 }, new float[6]));

        Assert.Equal(ProblemCodes.DimMismatch, e.Code);
        Assert.Equal(400, e.Status);
        Assert.Equal(0, (await Db.GetTableAsync(table)).Rows); // a rejected request changes nothing
    }

    [Fact]
    public async Task PullIntoADestinationOfTheWrongDimThrowsDimMismatch()
    {
        string table = await NewTableAsync(dim: 4);

        var e = await Assert.ThrowsAsync<ParamDbException>(() => Db.PullRangeAsync(table, 0, 2, new float[16]));

        Assert.Equal(ProblemCodes.DimMismatch, e.Code);
    }

    [Theory]
    [InlineData(new ulong[] { 2, 1 })]
    [InlineData(new ulong[] { 1, 3, 2 })]
    [InlineData(new ulong[] { 1, 1 })]
    public async Task UnsortedOrDuplicateKeysAreRejectedBeforeSending(ulong[] keys)
    {
        string table = await NewTableAsync(dim: 1);

        var push = await Assert.ThrowsAsync<ArgumentException>(() => Db.PushAsync(table, keys, new float[keys.Length]));
        await Assert.ThrowsAsync<ArgumentException>(() => Db.PullAsync(table, keys, new float[keys.Length]));
        await Assert.ThrowsAsync<ArgumentException>(() => Db.PullAsync(table, keys));

        Assert.Equal("keys", push.ParamName);
        Assert.Equal(0, (await Db.GetTableAsync(table)).Rows);
    }

    [Fact]
    public async Task ValuesThatAreNotWholeRowsAreRejectedBeforeSending()
    {
        string table = await NewTableAsync(dim: 2);

        await Assert.ThrowsAsync<ArgumentException>(() => Db.PushAsync(table, new ulong[] { 1, 2 }, new float[3]));
        await Assert.ThrowsAsync<ArgumentException>(() => Db.PushAsync(table, new ulong[] { 1, 2 }, ReadOnlyMemory<float>.Empty));
        await Assert.ThrowsAsync<ArgumentException>(() => Db.PullAsync(table, new ulong[] { 1, 2 }, new float[5]));
        await Assert.ThrowsAsync<ArgumentException>(() => Db.PushRangeAsync(table, 0, new float[3], dim: 2));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Db.PushRangeAsync(table, 0, new float[4], dim: 0));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Db.PullRangeAsync(table, ulong.MaxValue, 2));
    }

    [Fact]
    public async Task KeysAtOrAboveMaxKeyThrowKeyOutOfRange()
    {
        string table = await NewTableAsync(dim: 1, maxKey: 100);

        var push = await Assert.ThrowsAsync<ParamDbException>(() => Db.PushAsync(table, new ulong[] { 5, 100 }, new float[2]));
        var pull = await Assert.ThrowsAsync<ParamDbException>(() => Db.PullRangeAsync(table, 99, 2));

        Assert.Equal(ProblemCodes.KeyOutOfRange, push.Code);
        Assert.Equal(ProblemCodes.KeyOutOfRange, pull.Code);
        Assert.Equal(0, (await Db.GetTableAsync(table)).Rows);
    }

    [Fact]
    public void ExceptionMessageCarriesCodeDetailAndStatus()
    {
        var e = new ParamDbException(409, ProblemCodes.TableExists, "Table \"x\" exists with dim 4.");

        Assert.Equal("table_exists: Table \"x\" exists with dim 4. (HTTP 409)", e.Message);
        Assert.Equal(409, e.Status);
        Assert.Equal(ProblemCodes.TableExists, e.Code);
        Assert.Equal("Table \"x\" exists with dim 4.", e.Detail);
    }
}
