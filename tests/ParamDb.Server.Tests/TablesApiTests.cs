using System.Net;
using System.Net.Http.Json;
using ParamDb.Protocol;

namespace ParamDb.Server.Tests;

public sealed class TablesApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task CreateReturns201WithNormalizedSchemaThenIdenticalCreateIs200()
    {
        var name = ServerFixture.NewTable();
        const string schema = """{"dim":8,"init":{"kind":"normal","std":0.5,"seed":7},"updater":{"kind":"adam","lr":0.01}}""";
        using var first = await Http.PutAsync($"/v1/tables/{name}", Wire.Json(schema));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal($"/v1/tables/{name}", first.Headers.Location?.ToString());
        var info = (await first.Content.ReadFromJsonAsync(ProtocolJson.Default.TableInfo))!;
        Assert.Equal(8, info.Schema.Dim);
        Assert.Equal(0.9, info.Schema.Updater!.Beta1);
        Assert.Equal(0.999, info.Schema.Updater.Beta2);
        Assert.Equal(0.0, info.Schema.Init!.Mean);
        Assert.Equal(0, info.Rows);

        // The same table spelled with its defaults explicit is the same table.
        const string same = """{"dim":8,"init":{"kind":"normal","mean":0,"std":0.5,"seed":7},"updater":{"kind":"adam","lr":0.01,"beta1":0.9,"beta2":0.999,"eps":1e-8}}""";
        using var again = await Http.PutAsync($"/v1/tables/{name}", Wire.Json(same));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task CreateWithADifferentSchemaIs409AndKeepsTheFirst()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":4}""");
        using var reply = await Http.PutAsync($"/v1/tables/{name}", Wire.Json("""{"dim":5}"""));
        await Wire.AssertProblemAsync(reply, 409, ProblemCodes.TableExists);
        var info = await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo);
        Assert.Equal(4, info!.Schema.Dim);
    }

    [Theory]
    [InlineData("""{"dim":0}""")]
    [InlineData("""{"dim":65537}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"sgd"}}""")]
    [InlineData("""{"dim":4,"updater":{"kind":"momentum","lr":1}}""")]
    [InlineData("""{"dim":4,"init":{"kind":"uniform","low":1,"high":1}}""")]
    [InlineData("""{"dim":4,"maxKey":0}""")]
    [InlineData("""{"dim":"four"}""")]
    [InlineData("""not json""")]
    public async Task InvalidSchemaIs400InvalidSchemaAndCreatesNothing(string schema)
    {
        var name = ServerFixture.NewTable();
        using var reply = await Http.PutAsync($"/v1/tables/{name}", Wire.Json(schema));
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.InvalidSchema);
        using var get = await Http.GetAsync($"/v1/tables/{name}");
        await Wire.AssertProblemAsync(get, 404, ProblemCodes.TableNotFound);
    }

    [Theory]
    [InlineData("has%20space")]
    [InlineData("star*")]
    [InlineData("semi;colon")]
    public async Task InvalidTableNameIs400(string name)
    {
        using var reply = await Http.PutAsync($"/v1/tables/{name}", Wire.Json("""{"dim":4}"""));
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.InvalidTableName);
    }

    [Fact]
    public async Task NameLongerThan128IsRejected()
    {
        using var reply = await Http.PutAsync($"/v1/tables/{new string('a', 129)}", Wire.Json("""{"dim":4}"""));
        await Wire.AssertProblemAsync(reply, 400, ProblemCodes.InvalidTableName);
    }

    [Fact]
    public async Task SchemaMustBeJson()
    {
        using var content = new ByteArrayContent("{\"dim\":4}"u8.ToArray());
        content.Headers.ContentType = new("text/plain");
        using var reply = await Http.PutAsync($"/v1/tables/{ServerFixture.NewTable()}", content);
        await Wire.AssertProblemAsync(reply, 415, ProblemCodes.UnsupportedMediaType);
    }

    [Fact]
    public async Task ListShowsTablesWithRowCountsAndBytes()
    {
        var name = ServerFixture.NewTable("list");
        await Wire.CreateTableAsync(Http, name, """{"dim":4,"updater":{"kind":"adagrad","lr":0.1}}""");
        await Wire.PushAsync(Http, name, [1, 2, 3], Wire.Fill(12, 1f), 4);
        var list = await Http.GetFromJsonAsync("/v1/tables", ProtocolJson.Default.TableList);
        var info = Assert.Single(list!.Tables, t => t.Name == name);
        Assert.Equal(3, info.Rows);
        // adagrad keeps one accumulator per value: at least 2 × 4 floats per row.
        Assert.True(info.Bytes >= 3 * 2 * 4 * 4, $"bytes {info.Bytes}");
    }

    [Fact]
    public async Task DeleteRemovesTheTableAndItsRows()
    {
        var name = ServerFixture.NewTable();
        await Wire.CreateTableAsync(Http, name, """{"dim":2}""");
        await Wire.PushAsync(Http, name, [5], [3f, 4f], 2);
        using (var del = await Http.DeleteAsync($"/v1/tables/{name}")) Assert.Equal(HttpStatusCode.NoContent, del.StatusCode);
        using (var get = await Http.GetAsync($"/v1/tables/{name}")) await Wire.AssertProblemAsync(get, 404, ProblemCodes.TableNotFound);
        using (var del2 = await Http.DeleteAsync($"/v1/tables/{name}")) await Wire.AssertProblemAsync(del2, 404, ProblemCodes.TableNotFound);

        await Wire.CreateTableAsync(Http, name, """{"dim":2}""");
        Assert.Equal((float[])[0f, 0f], await Wire.PullAsync(Http, name, [5]));
    }

    [Fact]
    public async Task UnknownRouteIsAProblemWithACode()
    {
        using var reply = await Http.GetAsync("/v1/nothing-here");
        await Wire.AssertProblemAsync(reply, 404, ProblemCodes.NotFound);
    }
}
