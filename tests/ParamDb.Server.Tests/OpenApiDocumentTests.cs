using System.Text.Json;
using System.Text.Json.Nodes;

namespace ParamDb.Server.Tests;

public sealed class OpenApiDocumentTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ParamDb.sln"))) return dir.FullName;
        throw new InvalidOperationException("ParamDb.sln not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task ServedDocumentEqualsTheCommittedOne()
    {
        var served = JsonNode.Parse(await fixture.Http.GetStringAsync("/swagger/v1/swagger.json"));
        var path = Path.Combine(RepoRoot(), "openapi", "paramdb.v1.json");
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(path));
        Assert.True(JsonNode.DeepEquals(served, committed),
            $"The served OpenAPI document differs from {path}. Rebuild src/ParamDb.Server (it regenerates the file) and commit it.");
    }

    [Fact]
    public async Task KvBlockBodiesAreDescribedAsBinary()
    {
        var doc = JsonDocument.Parse(await fixture.Http.GetStringAsync("/swagger/v1/swagger.json"));
        var pull = doc.RootElement.GetProperty("paths").GetProperty("/v1/tables/{table}/pull").GetProperty("post");
        var request = pull.GetProperty("requestBody").GetProperty("content").GetProperty("application/x-paramdb-kv").GetProperty("schema");
        Assert.Equal("string", request.GetProperty("type").GetString());
        Assert.Equal("binary", request.GetProperty("format").GetString());
        var reply = pull.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/x-paramdb-kv").GetProperty("schema");
        Assert.Equal("binary", reply.GetProperty("format").GetString());
    }

    [Fact]
    public async Task SwaggerUiIsServed()
    {
        using var reply = await fixture.Http.GetAsync("/swagger/index.html");
        Assert.True(reply.IsSuccessStatusCode);
        Assert.Contains("swagger-ui", await reply.Content.ReadAsStringAsync());
    }
}
