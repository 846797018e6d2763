namespace ParamDb.Storage.Tests;

public sealed class TableTests : IDisposable
{
    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void CreateTableReportsCreatedThenAlreadyExistsThenConflict()
    {
        using ParamStore store = _dir.Open();
        TableSchema schema = TestStore.Schema(8, updater: new UpdaterSpec { Kind = UpdaterSpec.Sgd, Lr = 0.5 });

        Assert.Equal(CreateTableOutcome.Created, store.CreateTable("emb", schema, out TableHandle created));
        Assert.Equal(CreateTableOutcome.AlreadyExists, store.CreateTable("emb", TestStore.Schema(8, updater: new UpdaterSpec { Kind = UpdaterSpec.Sgd, Lr = 0.5 }), out TableHandle same));
        Assert.Same(created, same);
        Assert.Equal(CreateTableOutcome.Conflict, store.CreateTable("emb", TestStore.Schema(8), out TableHandle existing));
        Assert.Same(created, existing);
        Assert.Equal(schema, existing.Schema);
        Assert.Equal(("emb", 8), (created.Name, created.Dim));
    }

    [Fact]
    public void CreateTableRefusesUnnormalizedSchemasAndInvalidNames()
    {
        using ParamStore store = _dir.Open();
        Assert.Throws<ArgumentException>(() => store.CreateTable("t", new TableSchema { Dim = 4 }, out _));
        Assert.Throws<ArgumentException>(() => store.CreateTable("a/b", TestStore.Schema(4), out _));
        Assert.Empty(store.ListTables());
    }

    [Fact]
    public void ListTablesIsSortedByNameAndTryGetFindsLiveTablesOnly()
    {
        using ParamStore store = _dir.Open();
        foreach (string name in new[] { "b", "a", "C", "a.2" }) TestStore.Create(store, name, TestStore.Schema(2));
        Assert.True(store.DeleteTable("b"));
        Assert.False(store.DeleteTable("b"));

        Assert.Equal(["C", "a", "a.2"], store.ListTables().Select(t => t.Name));
        Assert.True(store.TryGetTable("a", out TableHandle? a));
        Assert.Equal("a", a.Name);
        Assert.False(store.TryGetTable("b", out _));
        // Ids are never reused: b had 1, the others 2…4, the next table gets 5.
        Assert.Equal([2u, 3u, 4u], store.ListTables().Select(t => t.Id).Order());
        Assert.Equal(5u, TestStore.Create(store, "b", TestStore.Schema(2)).Id);
    }

    [Fact]
    public void StatsCountDistinctStoredRowsAndTheirStoredBytes()
    {
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(10, updater: new UpdaterSpec { Kind = UpdaterSpec.Adagrad, Lr = 0.1 }));
        var values = new float[3 * 10];
        store.Push(table, [1, 2, 3], values);
        store.Push(table, [2, 3, 4], values);
        TestStore.Pull(store, table, 100, 101);
        Assert.Equal(new TableStats(4, 4 * 2 * 10 * sizeof(float)), store.GetStats(table));
    }

    [Fact]
    public void DeletedTableRecreatedUnderTheSameNameStartsFromInitialValues()
    {
        using ParamStore store = _dir.Open();
        var init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = 3 };
        TableHandle first = TestStore.Create(store, "t", TestStore.Schema(4, init));
        store.Push(first, [1, 2], Enumerable.Repeat(1f, 8).ToArray());
        Assert.True(store.DeleteTable("t"));

        TableHandle second = TestStore.Create(store, "t", TestStore.Schema(4, init));
        Assert.NotEqual(first.Id, second.Id);
        Assert.Equal(Enumerable.Repeat(3f, 8), TestStore.Pull(store, second, 1, 2));
        Assert.Equal(0, store.GetStats(second).Rows);
    }
}
