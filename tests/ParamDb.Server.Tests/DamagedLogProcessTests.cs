using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>
/// The real <c>paramdb</c> killed after acknowledged pushes, its write-ahead log damaged mid-way: the restart
/// refuses with one line naming the damage, <c>paramdb recover --accept-loss</c> drops what it says, and the node
/// then starts and serves the pushes before the damage.
/// </summary>
public sealed class DamagedLogProcessTests : IDisposable
{
    private readonly string _data = RunningServer.NewTempDirectory();

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task ARestartOverDamageWithIntactRecordsAfterItRefusesUntilTheLossIsAccepted()
    {
        using (var node = await NodeProcess.StartAsync(_data, "--checkpoint-interval", "0"))
        {
            using var http = new HttpClient { BaseAddress = node.Http1 };
            await Wire.CreateTableAsync(http, "t", """{"dim":4}""");
            await Wire.PushAsync(http, "t", [1000], [1f, 1f, 1f, 1f], 4);
            using (var c = await http.PostAsync("/v1/checkpoint", null)) Assert.True(c.IsSuccessStatusCode);
            for (int k = 0; k < 72; k++) await Wire.PushAsync(http, "t", [(ulong)k], [k + 1f, k + 1f, k + 1f, k + 1f], 4);
            await node.KillAsync();
        }
        string segment = Directory.GetFiles(Path.Combine(_data, "wal"), "wal-*.log").Order(StringComparer.Ordinal).Last();
        byte[] bytes = File.ReadAllBytes(segment);
        for (int i = bytes.Length / 2; i < bytes.Length / 2 + 4; i++) bytes[i] ^= 0xFF;
        File.WriteAllBytes(segment, bytes);

        var refused = await NodeProcess.RunToEndAsync("--data", _data, "--listen", "127.0.0.1:0", "--listen-h2", "127.0.0.1:0", "--memory", "64m");
        Assert.NotEqual(0, refused.ExitCode);
        string line = Assert.Single(refused.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(Path.GetFileName(segment), line);
        Assert.Matches(@"at byte \d+: .* and \d+ intact records were written after it", line);
        Assert.Contains("paramdb recover --accept-loss", line);
        Assert.Equal(bytes, File.ReadAllBytes(segment));   // a refused start changes nothing

        var recovered = await NodeProcess.RunToEndAsync("recover", "--data", _data, "--memory", "64m", "--accept-loss");
        Assert.Equal(0, recovered.ExitCode);
        Assert.Contains("dropped", recovered.Error);

        using (var node = await NodeProcess.StartAsync(_data))
        {
            using var http = new HttpClient { BaseAddress = node.Http1 };
            Assert.Equal((float[])[1f, 1f, 1f, 1f], await Wire.PullAsync(http, "t", [0]));
            Assert.Equal((float[])[1f, 1f, 1f, 1f], await Wire.PullAsync(http, "t", [1000]));
        }
    }
}
