namespace ParamDb.Storage.Tests;

public sealed class InitializerTests : IDisposable
{
    private readonly TestStore _dirA = new(), _dirB = new();

    public void Dispose()
    {
        _dirA.Dispose();
        _dirB.Dispose();
    }

    public static TheoryData<InitializerSpec> Specs =>
    [
        new InitializerSpec { Kind = InitializerSpec.Zeros },
        new InitializerSpec { Kind = InitializerSpec.Constant, Value = 0.25 },
        new InitializerSpec { Kind = InitializerSpec.Uniform, Low = -0.5, High = 0.25, Seed = 11 },
        new InitializerSpec { Kind = InitializerSpec.Normal, Mean = 1, Std = 0.1, Seed = 7 },
    ];

    [Theory]
    [MemberData(nameof(Specs))]
    public void MissingRowsReadTheSameInitialValuesInTwoStoresAndAreNotStored(InitializerSpec init)
    {
        TableSchema schema = TestStore.Schema(32, init);
        ulong[] keys = [0, 1, 2, 99, 1L << 40, ulong.MaxValue];
        using ParamStore a = _dirA.Open(), b = _dirB.Open();
        b.CreateTable("other", TestStore.Schema(3), out _);   // a different table id in b must not matter
        TableHandle ta = TestStore.Create(a, "t", schema), tb = TestStore.Create(b, "t", schema);
        Assert.NotEqual(ta.Id, tb.Id);
        long tailBefore = a.GetLogStats().TailAddress;

        float[] fromA = TestStore.Pull(a, ta, keys), fromB = TestStore.Pull(b, tb, keys), again = TestStore.Pull(a, ta, keys);

        Assert.Equal(fromA, fromB);
        Assert.Equal(fromA, again);
        var expected = new float[32];
        for (int i = 0; i < keys.Length; i++)
        {
            Initializers.Fill(schema.Init!, keys[i], expected);
            Assert.Equal(expected, fromA.AsSpan(i * 32, 32).ToArray());
        }
        Assert.Equal(new TableStats(0, 0), a.GetStats(ta));
        Assert.Equal(tailBefore, a.GetLogStats().TailAddress);
    }

    [Fact]
    public void UniformValuesStayWithinLowInclusiveHighExclusive()
    {
        var spec = new InitializerSpec { Kind = InitializerSpec.Uniform, Low = -0.5, High = 0.25, Seed = 5 };
        float[] values = Sample(spec, rows: 2000, dim: 64);
        Assert.All(values, x => Assert.InRange(x, -0.5f, 0.25f));
        Assert.DoesNotContain(0.25f, values);
        Assert.InRange(values.Average(), -0.125 - 0.005, -0.125 + 0.005);   // σ of the mean: 0.217/√128000 ≈ 0.0006
        Assert.InRange(values.Min(), -0.5f, -0.499f);
        Assert.InRange(values.Max(), 0.249f, 0.25f);
    }

    [Fact]
    public void NormalValuesHaveTheRequestedMeanAndStd()
    {
        var spec = new InitializerSpec { Kind = InitializerSpec.Normal, Mean = 2, Std = 0.5, Seed = 9 };
        float[] values = Sample(spec, rows: 2000, dim: 64);
        double mean = values.Average();
        double std = Math.Sqrt(values.Sum(x => (x - mean) * (x - mean)) / (values.Length - 1));
        Assert.InRange(mean, 2 - 0.01, 2 + 0.01);      // σ of the mean: 0.5/√128000 ≈ 0.0014
        Assert.InRange(std, 0.5 * 0.98, 0.5 * 1.02);
        // About 68.3 % within one σ, as a normal should be.
        double within = values.Count(x => Math.Abs(x - 2) < 0.5) / (double)values.Length;
        Assert.InRange(within, 0.673, 0.693);
    }

    [Fact]
    public void SeedKeyAndElementEachChangeTheValue()
    {
        var seed1 = new InitializerSpec { Kind = InitializerSpec.Normal, Mean = 0, Std = 1, Seed = 1 };
        var seed2 = seed1 with { Seed = 2 };
        float[] a = new float[8], b = new float[8], c = new float[8];
        Initializers.Fill(seed1, 10, a);
        Initializers.Fill(seed2, 10, b);
        Initializers.Fill(seed1, 11, c);
        Assert.NotEqual(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(8, a.Distinct().Count());
    }

    /// <summary>
    /// Golden values: the initializer is a contract between nodes, restarts and versions (rows never pushed are
    /// never stored). If this test fails, every table's untouched rows changed: don't update it, fix the change.
    /// </summary>
    [Fact]
    public void InitialValuesMatchTheGoldenValues()
    {
        var uniform = new InitializerSpec { Kind = InitializerSpec.Uniform, Low = -1, High = 1, Seed = 42 };
        var normal = new InitializerSpec { Kind = InitializerSpec.Normal, Mean = 0, Std = 1, Seed = 42 };
        var row = new float[4];
        Initializers.Fill(uniform, 123456789, row);
        Assert.Equal(GoldenUniform, row);
        Initializers.Fill(normal, 123456789, row);
        Assert.Equal(GoldenNormal, row);
    }

    private static readonly float[] GoldenUniform = [0.00770839816f, 0.256131649f, -0.686790526f, -0.969106674f];
    private static readonly float[] GoldenNormal = [0.911788642f, 0.916410565f, -0.159818903f, 0.050262481f];

    private float[] Sample(InitializerSpec spec, int rows, int dim)
    {
        using ParamStore store = _dirA.Open();
        TableHandle table = TestStore.Create(store, "t", TestStore.Schema(dim, spec));
        var values = new float[rows * dim];
        store.PullRange(table, 1, rows, values);
        return values;
    }
}
