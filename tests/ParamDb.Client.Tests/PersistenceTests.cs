using ParamDb.Client;
using ParamDb.Protocol;
using ParamDb.Testing;

namespace ParamDb.Client.Tests;

/// <summary>What a client pushed is there after the node restarts on the same data directory.</summary>
public sealed class PersistenceTests
{
    [Fact]
    public async Task PushedRowsSurviveARestart()
    {
        var server = await RunningServer.StartAsync();
        try
        {
            float[] pushed = [1, 2, 3, 4, 5, 6];
            using (var db = new ParamDbClient(server.Http1Uri))
            {
                await db.CreateTableAsync("kept", new TableSchema { Dim = 3 });
                await db.PushAsync("kept", new ulong[] { 7, 1UL << 50 }, pushed);
            }

            server = await server.RestartAsync();

            using var after = new ParamDbClient(server.Http1Uri);
            Assert.Equal(3, (await after.GetTableAsync("kept")).Schema.Dim);
            Assert.Equal(pushed, await after.PullAsync("kept", new ulong[] { 7, 1UL << 50 }));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
