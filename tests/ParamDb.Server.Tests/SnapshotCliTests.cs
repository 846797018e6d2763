using ParamDb.Server.Cli;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>The <c>paramdb snapshot …</c> commands in-process against a node of their own (a restore replaces all its tables).</summary>
public sealed class SnapshotCliTests : IAsyncLifetime
{
    private RunningServer _server = null!;
    private HttpClient _http = null!;
    private readonly string _directory = Directory.CreateTempSubdirectory("paramdb-snapcli-").FullName;

    public async Task InitializeAsync()
    {
        _server = await RunningServer.StartAsync();
        _http = _server.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private sealed record Run(int ExitCode, string Out, string Error);

    private async Task<Run> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await Commands.RunAsync([.. args, "--url", _server.Http1Uri.ToString()], new CliConsole(output, error, ErrorIsTerminal: false));
        return new Run(code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task CreateListExportRestoreAndDeleteASnapshot()
    {
        await Wire.CreateTableAsync(_http, "emb", """{"dim":2}""");
        await Wire.PushAsync(_http, "emb", [1, 7], [1, 2, 3, 4], 2);

        var created = await RunAsync("snapshot", "create", "epoch-1");
        Assert.True(created.ExitCode == 0, created.Error);
        Assert.StartsWith("Created epoch-1  ", created.Out);
        Assert.Contains("1 table  2 rows", created.Out);

        var list = await RunAsync("snapshot", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.StartsWith("epoch-1  ", list.Out.Trim());

        await Wire.PushAsync(_http, "emb", [1, 7], [1, 1, 1, 1], 2);   // the live table moves on
        string file = Path.Combine(_directory, "emb.safetensors");
        var export = await RunAsync("snapshot", "export", "epoch-1", "--table", "emb", "--out", file);
        Assert.True(export.ExitCode == 0, export.Error);
        Assert.Contains("100%", export.Error);
        byte[] bytes = await File.ReadAllBytesAsync(file);
        Assert.Equal(await _http.GetByteArrayAsync("/v1/snapshots/epoch-1/tables/emb/export"), bytes);
        Assert.False(File.Exists(file + ".partial"));
        Assert.Equal(2, (await Wire.PullAsync(_http, "emb", [1]))[0]);

        var again = await RunAsync("snapshot", "export", "epoch-1", "--table", "emb", "--out", file);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("exists", again.Error);

        var restored = await RunAsync("snapshot", "restore", "epoch-1");
        Assert.True(restored.ExitCode == 0, restored.Error);
        Assert.StartsWith("Restored epoch-1", restored.Out);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, await Wire.PullAsync(_http, "emb", [1, 7]));

        var deleted = await RunAsync("snapshot", "delete", "epoch-1");
        Assert.Equal(0, deleted.ExitCode);
        Assert.Equal("Deleted snapshot 'epoch-1'.", deleted.Out.Trim());
        var empty = await RunAsync("snapshot", "list");
        Assert.Equal("", empty.Out);
        Assert.Contains("No snapshots", empty.Error);
    }

    [Fact]
    public async Task ProblemsExitOneAndUsageErrorsExitTwoWithoutARequest()
    {
        var missing = await RunAsync("snapshot", "restore", "never-made");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("404 snapshot_not_found", missing.Error);

        var noTable = await RunAsync("snapshot", "export", "never-made", "--table", "t", "--out", Path.Combine(_directory, "x"));
        Assert.Equal(1, noTable.ExitCode);
        Assert.False(File.Exists(Path.Combine(_directory, "x")));
        Assert.False(File.Exists(Path.Combine(_directory, "x.partial")));

        foreach (string[] args in new[] { new[] { "snapshot", "create", "../up" }, ["snapshot", "create"], ["snapshot", "delete", ".hidden"],
                     ["snapshot", "export", "s"], ["snapshot", "list", "extra"], ["snapshot", "frobnicate"] })
        {
            var run = await RunAsync(args);
            Assert.True(run.ExitCode == 2, $"{string.Join(' ', args)}: {run.ExitCode} {run.Error}");
        }
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_server.DataDirectory, "snapshots")));

        var dup = await RunAsync("snapshot", "create", "one");
        Assert.Equal(0, dup.ExitCode);
        var twice = await RunAsync("snapshot", "create", "one");
        Assert.Equal(1, twice.ExitCode);
        Assert.Contains("409 snapshot_exists", twice.Error);
    }
}
