using System.Text.Json;
using ParamDb.Protocol;

namespace ParamDb.Protocol.Tests;

/// <summary>Schema validation and normalization (docs/tables.md), read from the JSON a client would send.</summary>
public sealed class TableSchemaTests
{
    private static TableSchema Parse(string json) =>
        JsonSerializer.Deserialize(json, ProtocolJson.Default.TableSchema) ?? throw new InvalidOperationException("null schema");

    private static TableSchema Normalize(string json)
    {
        Assert.True(Parse(json).TryNormalize(out var normalized, out var error), error.Detail);
        Assert.True(error.IsNone);
        return normalized;
    }

    [Fact]
    public void BareSchemaGetsZerosInitializerAndAddUpdater()
    {
        var schema = Normalize("""{"dim":8}""");

        Assert.Equal(8, schema.Dim);
        Assert.Equal(new InitializerSpec { Kind = InitializerSpec.Zeros }, schema.Init);
        Assert.Equal(new UpdaterSpec { Kind = UpdaterSpec.Add }, schema.Updater);
        Assert.Null(schema.MaxKey);
    }

    [Fact]
    public void AdamDefaultsAreFilledIn()
    {
        var updater = Normalize("""{"dim":4,"updater":{"kind":"adam","lr":0.001}}""").Updater!;

        Assert.Equal(UpdaterSpec.Adam, updater.Kind);
        Assert.Equal(0.001, updater.Lr);
        Assert.Equal(0.9, updater.Beta1);
        Assert.Equal(0.999, updater.Beta2);
        Assert.Equal(1e-8, updater.Eps);
        Assert.Null(updater.InitialAccumulator);
    }

    [Fact]
    public void AdagradDefaultsAreFilledIn()
    {
        var updater = Normalize("""{"dim":4,"updater":{"kind":"adagrad","lr":0.1}}""").Updater!;

        Assert.Equal(1e-10, updater.Eps);
        Assert.Equal(0.0, updater.InitialAccumulator);
        Assert.Null(updater.Beta1);
    }

    [Fact]
    public void InitializerDefaultsAreFilledIn()
    {
        Assert.Equal(
            new InitializerSpec { Kind = InitializerSpec.Uniform, Low = 0, High = 1, Seed = 0 },
            Normalize("""{"dim":1,"init":{"kind":"uniform"}}""").Init);
        Assert.Equal(
            new InitializerSpec { Kind = InitializerSpec.Normal, Mean = 0, Std = 1, Seed = 0 },
            Normalize("""{"dim":1,"init":{"kind":"normal"}}""").Init);
    }

    [Fact]
    public void FieldsThatDoNotBelongToTheKindAreDropped()
    {
        var schema = Normalize("""{"dim":2,"init":{"kind":"zeros","std":5,"seed":3},"updater":{"kind":"add","lr":0.5,"beta1":0.1}}""");

        Assert.Equal(new InitializerSpec { Kind = InitializerSpec.Zeros }, schema.Init);
        Assert.Equal(new UpdaterSpec { Kind = UpdaterSpec.Add }, schema.Updater);
    }

    [Theory]
    [InlineData("""{"dim":64}""", """{"dim":64,"init":{"kind":"zeros"},"updater":{"kind":"add"}}""")]
    [InlineData("""{"dim":64,"updater":{"kind":"adam","lr":0.001}}""", """{"dim":64,"updater":{"kind":"adam","lr":0.001,"beta1":0.9,"beta2":0.999,"eps":1e-8}}""")]
    [InlineData("""{"dim":3,"updater":{"kind":"adagrad","lr":0.1}}""", """{"dim":3,"updater":{"kind":"adagrad","lr":0.1,"eps":1e-10,"initialAccumulator":0}}""")]
    [InlineData("""{"dim":3,"init":{"kind":"normal","std":0.01}}""", """{"dim":3,"init":{"kind":"normal","mean":0,"std":0.01,"seed":0}}""")]
    [InlineData("""{"dim":3,"init":{"kind":"constant","value":2,"seed":9}}""", """{"dim":3,"init":{"kind":"constant","value":2.0}}""")]
    [InlineData("""{"dim":3,"maxKey":1000}""", """{"maxKey":1000,"updater":{"kind":"add"},"dim":3}""")]
    public void SchemasThatMeanTheSameTableNormalizeEqual(string shortForm, string longForm)
    {
        var a = Normalize(shortForm);
        var b = Normalize(longForm);

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }

    [Theory]
    [InlineData("""{"dim":64}""", """{"dim":65}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"add"}}""", """{"dim":4,"updater":{"kind":"assign"}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"sgd","lr":0.1}}""", """{"dim":4,"updater":{"kind":"sgd","lr":0.2}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"normal","seed":1}}""", """{"dim":4,"init":{"kind":"normal","seed":2}}""")]
    [InlineData("""{"dim":4}""", """{"dim":4,"maxKey":10}""")]
    public void SchemasThatDifferNormalizeUnequal(string a, string b)
    {
        Assert.NotEqual(Normalize(a), Normalize(b));
    }

    [Fact]
    public void NormalizingIsIdempotent()
    {
        var once = Normalize("""{"dim":16,"init":{"kind":"uniform","low":-1},"updater":{"kind":"adam","lr":0.01}}""");

        Assert.True(once.TryNormalize(out var twice, out _));

        Assert.Equal(once, twice);
    }

    [Fact]
    public void NormalizedSchemaSurvivesAJsonRoundTrip()
    {
        var schema = Normalize("""{"dim":16,"init":{"kind":"normal","std":0.01,"seed":7},"updater":{"kind":"adagrad","lr":0.05},"maxKey":4096}""");

        string json = JsonSerializer.Serialize(schema, ProtocolJson.Default.TableSchema);

        Assert.Equal(schema, Parse(json));
        Assert.Contains("\"initialAccumulator\":0", json);
        Assert.DoesNotContain("beta1", json); // nulls are omitted on the wire
    }

    [Theory]
    [InlineData("""{"dim":0}""")]
    [InlineData("""{}""")]
    [InlineData("""{"dim":-1}""")]
    [InlineData("""{"dim":65537}""")]
    [InlineData("""{"dim":4,"init":{"kind":"gaussian"}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"Zeros"}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"constant"}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"uniform","low":1,"high":1}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"uniform","low":2,"high":1}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"uniform","low":2}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"normal","std":-0.5}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"momentum","lr":0.1}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":""}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"sgd"}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"sgd","lr":0}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"sgd","lr":-0.1}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"adagrad","lr":0}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"adagrad","lr":0.1,"eps":0}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"adagrad","lr":0.1,"initialAccumulator":-1}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"adam","lr":-1}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"adam","lr":0.1,"beta1":1}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"adam","lr":0.1,"beta2":-0.1}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"adam","lr":0.1,"eps":0}}""")]
    [InlineData("""{"dim":4,"maxKey":0}""")]
    public void InvalidSchemaIsRejectedWithInvalidSchema(string json)
    {
        Assert.False(Parse(json).TryNormalize(out _, out var error));

        Assert.Equal(ProblemCodes.InvalidSchema, error.Code);
        Assert.Equal(400, error.Status);
        Assert.False(string.IsNullOrWhiteSpace(error.Detail));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(TableSchema.MaxDim)]
    public void DimWithinOneTo65536IsAccepted(int dim)
    {
        Assert.True(new TableSchema { Dim = dim }.TryNormalize(out var normalized, out _));
        Assert.Equal(dim, normalized.Dim);
    }

    [Fact]
    public void NonFiniteNumbersAreRejected()
    {
        var schemas = new[]
        {
            new TableSchema { Dim = 1, Init = new InitializerSpec { Kind = InitializerSpec.Constant, Value = double.NaN } },
            new TableSchema { Dim = 1, Init = new InitializerSpec { Kind = InitializerSpec.Uniform, High = double.PositiveInfinity } },
            new TableSchema { Dim = 1, Init = new InitializerSpec { Kind = InitializerSpec.Normal, Mean = double.NaN } },
            new TableSchema { Dim = 1, Updater = new UpdaterSpec { Kind = UpdaterSpec.Sgd, Lr = double.NaN } },
            new TableSchema { Dim = 1, Updater = new UpdaterSpec { Kind = UpdaterSpec.Sgd, Lr = double.PositiveInfinity } },
        };

        foreach (var schema in schemas)
        {
            Assert.False(schema.TryNormalize(out _, out var error));
            Assert.Equal(ProblemCodes.InvalidSchema, error.Code);
        }
    }

    [Fact]
    public void AllowNonFiniteIsFalseWhenAbsentOmittedWhenFalseAndWrittenWhenTrue()
    {
        var absent = System.Text.Json.JsonSerializer.Deserialize("""{"dim":2}""", ProtocolJson.Default.TableSchema)!;
        Assert.False(absent.AllowNonFinite);
        Assert.True(absent.TryNormalize(out var normalized, out _));
        // Absent and false are one schema, so catalogs and exports written before the field existed stay equal.
        var explicitFalse = System.Text.Json.JsonSerializer.Deserialize("""{"dim":2,"allowNonFinite":false}""", ProtocolJson.Default.TableSchema)!;
        Assert.True(explicitFalse.TryNormalize(out var normalizedFalse, out _));
        Assert.Equal(normalized, normalizedFalse);
        Assert.DoesNotContain("allowNonFinite", System.Text.Json.JsonSerializer.Serialize(normalized, ProtocolJson.Default.TableSchema));

        var allowed = System.Text.Json.JsonSerializer.Deserialize("""{"dim":2,"allowNonFinite":true}""", ProtocolJson.Default.TableSchema)!;
        Assert.True(allowed.TryNormalize(out var normalizedTrue, out _));
        Assert.NotEqual(normalized, normalizedTrue);
        string json = System.Text.Json.JsonSerializer.Serialize(normalizedTrue, ProtocolJson.Default.TableSchema);
        Assert.Contains("\"allowNonFinite\":true", json);
        Assert.Equal(normalizedTrue, System.Text.Json.JsonSerializer.Deserialize(json, ProtocolJson.Default.TableSchema));
    }
}
