using System.Diagnostics;
using System.Runtime.InteropServices;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>The real <c>paramdb</c> executable as a child process: command line, signals, restart.</summary>
public sealed partial class ProcessTests
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    private const int SIGTERM = 15;

    private static ProcessStartInfo Paramdb(params string[] args) => NodeProcess.Command(args);

    [Fact]
    public async Task HelpListsTheOptionsAndExitsZero()
    {
        using var p = Process.Start(Paramdb("--help"))!;
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, p.ExitCode);
        foreach (var option in new[] { "--data", "--listen", "--listen-h2", "--memory", "--checkpoint-interval" })
            Assert.Contains(option, output);
    }

    [Fact]
    public async Task ABadOptionExitsTwoNamingIt()
    {
        using var p = Process.Start(Paramdb("--memory", "lots", "--data", RunningServer.NewTempDirectory()))!;
        var error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("--memory", error);
    }

    [Fact]
    public async Task OptionsAreReadFromEnvironmentVariables()
    {
        // A bad value that only the environment supplies proves the variable is read.
        var info = Paramdb("--data", RunningServer.NewTempDirectory());
        info.Environment["ParamDb__Memory"] = "lots";
        using var p = Process.Start(info)!;
        var error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("'lots'", error);
    }

    [Fact]
    public async Task SigtermTakesACheckpointSoARestartKeepsThePushes()
    {
        var data = RunningServer.NewTempDirectory();
        try
        {
            using (var node = await NodeProcess.StartAsync(data))
            {
                using var http = new HttpClient { BaseAddress = node.Http1 };
                await Wire.CreateTableAsync(http, "w", """{"dim":2}""");
                for (int i = 0; i < 5; i++) await Wire.PushAsync(http, "w", [10, 20], [1f, 2f, 3f, 4f], 2);
                Assert.Equal(0, kill(node.Process.Id, SIGTERM));
                await node.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
                Assert.Equal(0, node.Process.ExitCode);
            }
            using (var node = await NodeProcess.StartAsync(data))
            {
                using var http = new HttpClient { BaseAddress = node.Http1 };
                Assert.Equal((float[])[5f, 10f, 15f, 20f], await Wire.PullAsync(http, "w", [10, 20]));
            }
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }
}
