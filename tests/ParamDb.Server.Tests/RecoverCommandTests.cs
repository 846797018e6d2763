using ParamDb.Protocol;
using ParamDb.Server.Cli;
using ParamDb.Storage;

namespace ParamDb.Server.Tests;

/// <summary><c>paramdb recover</c> on a stopped node's data directory whose write-ahead log is damaged mid-way.</summary>
public sealed class RecoverCommandTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("paramdb-recover-").FullName;

    public void Dispose() => Directory.Delete(_data, recursive: true);

    private static async Task<(int Code, string Out, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await Commands.RunAsync(args, new CliConsole(output, error, ErrorIsTerminal: false));
        return (code, output.ToString(), error.ToString());
    }

    private StoreOptions Options => new() { DataDirectory = _data, MemoryBytes = 32L << 20 };

    /// <summary>A checkpoint, then 40 pushes of one key each (key k holds k + 1), then a crash; the log's middle inverted.</summary>
    private async Task<string> DamagedLogAsync()
    {
        using (ParamStore store = ParamStore.Open(Options))
        {
            Assert.True(new TableSchema { Dim = 2 }.TryNormalize(out TableSchema schema, out _));
            TableHandle t = store.AddTable(store.NextTableId, "t", schema);
            await store.CheckpointAsync();
            for (int k = 0; k < 40; k++) await store.Push(t, [(ulong)k], [k + 1f, k + 1f]).Durable;
        }
        string segment = Directory.GetFiles(Path.Combine(_data, "wal"), "wal-*.log").Order(StringComparer.Ordinal).Last();
        byte[] bytes = File.ReadAllBytes(segment);
        for (int i = bytes.Length / 2; i < bytes.Length / 2 + 4; i++) bytes[i] ^= 0xFF;
        File.WriteAllBytes(segment, bytes);
        return segment;
    }

    [Fact]
    public async Task WithoutAcceptLossItReportsTheDamageAndChangesNothing()
    {
        string segment = await DamagedLogAsync();
        byte[] before = File.ReadAllBytes(segment);

        var run = await RunAsync("recover", "--data", _data);

        Assert.Equal(1, run.Code);
        Assert.Contains(segment, run.Error);
        Assert.Contains("intact records were written after it", run.Error);
        Assert.Equal(before, File.ReadAllBytes(segment));
        Assert.False(Directory.Exists(Path.Combine(_data, "damaged")));
    }

    [Fact]
    public async Task WithAcceptLossItSaysWhatItDroppedAndTheNodeStartsAgain()
    {
        await DamagedLogAsync();

        var run = await RunAsync("recover", "--data", _data, "--accept-loss");

        Assert.Equal(0, run.Code);
        Assert.Contains("dropped", run.Error);
        Assert.Matches(@"records \d+…\d+", run.Error);
        Assert.Contains("the node can start", run.Out);
        using ParamStore reopened = ParamStore.Open(Options);
        Assert.Null(reopened.AcceptedLoss);
        Assert.True(reopened.TryGetTable("t", out TableHandle? t));
        var values = new float[2];
        reopened.Pull(t!, [0UL], values);
        Assert.Equal(1f, values[0]);   // the first push precedes the damage
        var again = await RunAsync("recover", "--data", _data);
        Assert.Equal(0, again.Code);
        Assert.Contains("recovers whole", again.Out);
    }

    [Fact]
    public async Task ARecoverBesideARunningNodeIsRefused()
    {
        Directory.CreateDirectory(_data);
        using FileStream held = ParamDb.Server.Hosting.DataDirectoryLock.Acquire(_data);
        var run = await RunAsync("recover", "--data", _data);
        Assert.NotEqual(0, run.Code);
        Assert.Contains("in use by another ParamDb process", run.Error);
    }
}
