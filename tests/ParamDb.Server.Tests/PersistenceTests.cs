using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

public sealed class PersistenceTests
{
    [Fact]
    public async Task RowsSchemasAndOptimizerStateSurviveACleanRestart()
    {
        var server = await RunningServer.StartAsync();
        try
        {
            float[] before;
            using (var http = server.CreateClient())
            {
                await Wire.CreateTableAsync(http, "emb", """{"dim":4,"init":{"kind":"normal","std":0.1,"seed":1},"updater":{"kind":"adam","lr":0.1}}""");
                await Wire.CreateTableAsync(http, "bias", """{"dim":1}""");
                await Wire.PushAsync(http, "emb", [1, 2], Wire.Fill(8, 1f), 4);
                await Wire.PushAsync(http, "bias", [7], [3f], 1);
                before = await Wire.PullAsync(http, "emb", [1, 2, 3]);
            }

            server = await server.RestartAsync();
            using (var http = server.CreateClient())
            {
                Assert.Equal(before, await Wire.PullAsync(http, "emb", [1, 2, 3]));
                Assert.Equal((float[])[3f], await Wire.PullAsync(http, "bias", [7]));
                var info = await http.GetFromJsonAsync("/v1/tables/emb", ProtocolJson.Default.TableInfo);
                Assert.Equal("adam", info!.Schema.Updater!.Kind);
                Assert.Equal(2, info.Rows);

                // Adam's second step must use the recovered m, v and t. With g1 = 1 then g2 = 2 the step is
                // lr·m̂/(√v̂+eps) ≈ 0.0965; a row whose state was lost would step by lr = 0.1 instead.
                await Wire.PushAsync(http, "emb", [1], Wire.Fill(4, 2f), 4);
                var after = await Wire.PullAsync(http, "emb", [1]);
                double m = 0.9 * 0.1 + 0.1 * 2, v = 0.999 * 0.001 + 0.001 * 4;
                double step = 0.1 * (m / (1 - 0.9 * 0.9)) / (Math.Sqrt(v / (1 - 0.999 * 0.999)) + 1e-8);
                for (int j = 0; j < 4; j++) Assert.Equal(before[j] - step, after[j], 4);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task CheckpointEndpointReturnsATokenAndHealthShowsIt()
    {
        await using var server = await RunningServer.StartAsync();
        using var http = server.CreateClient();
        using var reply = await http.PostAsync("/v1/checkpoint", null);
        var checkpoint = (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.CheckpointReply))!;
        Assert.True(Guid.TryParse(checkpoint.Token, out _));
        var health = (await http.GetFromJsonAsync("/v1/health", ProtocolJson.Default.HealthReply))!;
        Assert.Equal(checkpoint.CompletedAt, health.LastCheckpoint);
    }

    [Fact]
    public async Task ASecondNodeOnTheSameDataDirectoryRefusesToStart()
    {
        await using var server = await RunningServer.StartAsync();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => RunningServer.StartAsync(server.DataDirectory));
        Assert.Contains("in use", e.Message);
    }
}
