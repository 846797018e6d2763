namespace ParamDb.Storage.Tests;

public sealed class UpdaterTests : IDisposable
{
    private const int Dim = 16;
    private const int Steps = 5;
    private static readonly ulong[] Keys = [0, 5, 1_000_000_007, ulong.MaxValue];
    private static readonly InitializerSpec Init = new() { Kind = InitializerSpec.Uniform, Low = -1, High = 1, Seed = 3 };

    private readonly TestStore _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> Kinds => [UpdaterSpec.Assign, UpdaterSpec.Add, UpdaterSpec.Sgd, UpdaterSpec.Adagrad, UpdaterSpec.Adam];

    public static UpdaterSpec Updater(string kind) => kind switch
    {
        UpdaterSpec.Sgd => new UpdaterSpec { Kind = kind, Lr = 0.1 },
        UpdaterSpec.Adagrad => new UpdaterSpec { Kind = kind, Lr = 0.1, InitialAccumulator = 0.1 },
        UpdaterSpec.Adam => new UpdaterSpec { Kind = kind, Lr = 0.01 },
        _ => new UpdaterSpec { Kind = kind },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void RepeatedPushesMatchTheReferenceUpdater(string kind)
    {
        using ParamStore store = _dir.Open();
        TableSchema schema = TestStore.Schema(Dim, Init, Updater(kind));
        TableHandle table = TestStore.Create(store, "t", schema);
        ReferenceRow[] reference = Keys.Select(k => NewReference(schema, k)).ToArray();

        var values = new float[Keys.Length * Dim];
        for (int step = 0; step < Steps; step++)
        {
            for (int i = 0; i < Keys.Length; i++)
            for (int j = 0; j < Dim; j++)
                values[i * Dim + j] = ReferenceRow.Gradient(Keys[i], step, j);
            store.Push(table, Keys, values);
            for (int i = 0; i < Keys.Length; i++) reference[i].Push(values.AsSpan(i * Dim, Dim));
        }

        float[] pulled = TestStore.Pull(store, table, Keys);
        for (int i = 0; i < Keys.Length; i++)
            ReferenceRow.AssertClose(reference[i].Values, pulled.AsSpan(i * Dim, Dim), $"{kind} key {Keys[i]}");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void PushRangeAndPullRangeAddressConsecutiveKeys(string kind)
    {
        using ParamStore store = _dir.Open();
        TableSchema schema = TestStore.Schema(Dim, Init, Updater(kind));
        TableHandle table = TestStore.Create(store, "t", schema);
        const ulong first = 1000;
        const int count = 300;
        ReferenceRow[] reference = Enumerable.Range(0, count).Select(i => NewReference(schema, first + (ulong)i)).ToArray();

        var values = new float[count * Dim];
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < count; i++)
            for (int j = 0; j < Dim; j++)
                values[i * Dim + j] = ReferenceRow.Gradient(first + (ulong)i, step, j);
            store.PushRange(table, first, count, values);
            for (int i = 0; i < count; i++) reference[i].Push(values.AsSpan(i * Dim, Dim));
        }

        var pulled = new float[count * Dim];
        store.PullRange(table, first, count, pulled);
        for (int i = 0; i < count; i++)
            ReferenceRow.AssertClose(reference[i].Values, pulled.AsSpan(i * Dim, Dim), $"{kind} key {first + (ulong)i}");
        Assert.Equal(count, store.GetStats(table).Rows);
    }

    [Fact]
    public void PullReturnsOnlyRowValuesNeverOptimizerState()
    {
        using ParamStore store = _dir.Open();
        TableSchema schema = TestStore.Schema(4, updater: Updater(UpdaterSpec.Adam));
        TableHandle table = TestStore.Create(store, "adam", schema);
        float[] g = [1, -2, 3, -4];
        store.Push(table, [7], g);

        // A destination sized for more than dim floats per row is refused, not filled with m and v.
        Assert.Throws<ArgumentException>(() => store.Pull(table, [7], new float[12]));
        float[] row = TestStore.Pull(store, table, 7);
        var reference = new ReferenceRow(schema.Updater!, new float[4]);
        reference.Push(g);
        ReferenceRow.AssertClose(reference.Values, row, "adam row");
        // First adam step from zero moves every element by -lr·sign(g) (m̂/√v̂ = ±1).
        Assert.Equal([-0.01f, 0.01f, -0.01f, 0.01f], row.Select(x => MathF.Round(x, 6)));
        // What is stored is bigger than what is pulled: w, m, v (3·4 floats) and the int32 step.
        Assert.Equal(new TableStats(1, 3 * 4 * sizeof(float) + sizeof(int)), store.GetStats(table));
    }

    [Fact]
    public void PushWithWrongValueCountIsRefusedAndChangesNothing()
    {
        using ParamStore store = _dir.Open();
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(4));
        Assert.Throws<ArgumentException>(() => store.Push(table, [1, 2], new float[7]));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.PushRange(table, ulong.MaxValue, 2, new float[8]));
        Assert.Equal(0, store.GetStats(table).Rows);
    }

    private static ReferenceRow NewReference(TableSchema schema, ulong key)
    {
        var init = new float[schema.Dim];
        Initializers.Fill(schema.Init!, key, init);
        return new ReferenceRow(schema.Updater!, init);
    }
}
