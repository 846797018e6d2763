using ParamDb.Client;
using ParamDb.Protocol;

namespace ParamDb.Client.Tests;

[Collection(ServerCollection.Name)]
public sealed class TableManagementTests(ServerFixture fixture)
{
    private ParamDbClient Db => fixture.Client;

    [Fact]
    public async Task CreateTableReturnsTheNormalizedSchemaAndGetReturnsTheSame()
    {
        string name = ServerFixture.NewTable();
        var schema = new TableSchema { Dim = 16, Updater = new UpdaterSpec { Kind = UpdaterSpec.Adam, Lr = 0.01 } };

        var created = await Db.CreateTableAsync(name, schema);
        var fetched = await Db.GetTableAsync(name);

        Assert.Equal(name, created.Name);
        Assert.True(schema.TryNormalize(out var normalized, out _));
        Assert.Equal(normalized, created.Schema);
        Assert.Equal(0.9, created.Schema.Updater!.Beta1);
        Assert.Equal(created.Schema, fetched.Schema);
        Assert.Equal(0, fetched.Rows);
    }

    [Fact]
    public async Task RecreatingAnIdenticalTableIsANoOp()
    {
        string name = ServerFixture.NewTable();
        await Db.CreateTableAsync(name, new TableSchema { Dim = 4 });
        await Db.PushAsync(name, new ulong[] { 3 }, new float[] { 1, 2, 3, 4 });

        // Same meaning spelled out in full: defaults filled in, so still identical.
        var again = await Db.CreateTableAsync(name, new TableSchema
        {
            Dim = 4,
            Init = new InitializerSpec { Kind = InitializerSpec.Zeros },
            Updater = new UpdaterSpec { Kind = UpdaterSpec.Add },
        });

        Assert.Equal(1, again.Rows);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, await Db.GetRowAsync(name, 3));
    }

    [Fact]
    public async Task RecreatingWithAnotherSchemaThrowsTableExists()
    {
        string name = ServerFixture.NewTable();
        await Db.CreateTableAsync(name, new TableSchema { Dim = 4 });

        var e = await Assert.ThrowsAsync<ParamDbException>(() => Db.CreateTableAsync(name, new TableSchema { Dim = 8 }));

        Assert.Equal(ProblemCodes.TableExists, e.Code);
        Assert.Equal(409, e.Status);
        Assert.Contains(ProblemCodes.TableExists, e.Message);
        Assert.Equal(4, (await Db.GetTableAsync(name)).Schema.Dim);
    }

    [Fact]
    public async Task ListTablesIncludesEveryCreatedTable()
    {
        string a = ServerFixture.NewTable(), b = ServerFixture.NewTable();
        await Db.CreateTableAsync(a, new TableSchema { Dim = 1 });
        await Db.CreateTableAsync(b, new TableSchema { Dim = 2 });

        var tables = await Db.ListTablesAsync();

        Assert.Contains(tables, t => t.Name == a && t.Schema.Dim == 1);
        Assert.Contains(tables, t => t.Name == b && t.Schema.Dim == 2);
    }

    [Fact]
    public async Task DeletedTableIsGone()
    {
        string name = ServerFixture.NewTable();
        await Db.CreateTableAsync(name, new TableSchema { Dim = 2 });

        await Db.DeleteTableAsync(name);

        var e = await Assert.ThrowsAsync<ParamDbException>(() => Db.GetTableAsync(name));
        Assert.Equal(ProblemCodes.TableNotFound, e.Code);
        Assert.Equal(404, e.Status);
        Assert.DoesNotContain(await Db.ListTablesAsync(), t => t.Name == name);
        await Assert.ThrowsAsync<ParamDbException>(() => Db.DeleteTableAsync(name));
    }

    [Fact]
    public async Task MissingTableThrowsTableNotFoundWithADetail()
    {
        var e = await Assert.ThrowsAsync<ParamDbException>(() => Db.GetTableAsync("no-such-table"));

        Assert.Equal(ProblemCodes.TableNotFound, e.Code);
        Assert.False(string.IsNullOrWhiteSpace(e.Detail));
        Assert.Contains(e.Detail!, e.Message);
    }

    [Fact]
    public async Task InvalidSchemaThrowsInvalidSchema()
    {
        var e = await Assert.ThrowsAsync<ParamDbException>(() =>
            Db.CreateTableAsync(ServerFixture.NewTable(), new TableSchema { Dim = 4, Updater = new UpdaterSpec { Kind = UpdaterSpec.Sgd } }));

        Assert.Equal(ProblemCodes.InvalidSchema, e.Code);
        Assert.Equal(400, e.Status);
    }

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("with space")]
    public async Task InvalidTableNameIsRejectedBeforeSending(string name)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Db.CreateTableAsync(name, new TableSchema { Dim = 1 }));
        await Assert.ThrowsAsync<ArgumentException>(() => Db.PullAsync(name, new ulong[] { 1 }));
    }

    [Fact]
    public async Task HealthReportsOkAndBothAddresses()
    {
        var health = await Db.HealthAsync();

        Assert.Equal("ok", health.Status);
        Assert.False(string.IsNullOrEmpty(health.Version));
        Assert.NotNull(health.Http1);
        Assert.NotNull(health.Http2);
    }

    [Fact]
    public async Task CheckpointReturnsAToken()
    {
        string name = ServerFixture.NewTable();
        await Db.CreateTableAsync(name, new TableSchema { Dim = 2 });
        await Db.PushAsync(name, new ulong[] { 1 }, new float[] { 1, 1 });

        var checkpoint = await Db.CheckpointAsync();

        Assert.False(string.IsNullOrEmpty(checkpoint.Token));
        Assert.True(checkpoint.DurationMs >= 0);
    }
}
