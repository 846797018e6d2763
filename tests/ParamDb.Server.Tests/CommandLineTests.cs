using System.Diagnostics;
using System.Text.RegularExpressions;
using ParamDb.Server.Cli;
using ParamDb.Server.Options;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>The node's command line: unknown switches, ASP.NET's own settings, one-line start-up errors.</summary>
public sealed partial class CommandLineTests
{
    [Theory]
    [InlineData("--durabilty", "--durability")]
    [InlineData("--memroy", "--memory")]
    [InlineData("--listen-h3", "--listen-h2")]
    [InlineData("--max-key", "--max-keys")]
    [InlineData("--allowed-host", "--allowed-hosts")]
    [InlineData("--Verbos", "--verbose")]
    [InlineData("--enviroment", "--environment")]
    [InlineData("--port", null)]
    [InlineData("--x", null)]
    public void AMistypedSwitchFindsTheClosestKnownOne(string typed, string? expected) =>
        Assert.Equal(expected, ClosestName.Find(typed, ["--data", "--durability", "--memory", "--listen", "--listen-h2", "--max-keys",
            "--allowed-hosts", "--verbose", "-h", "--environment"]));

    [Theory]
    [InlineData("", "", 0)]
    [InlineData("memory", "memroy", 1)]
    [InlineData("durability", "durabilty", 1)]
    [InlineData("kitten", "sitting", 3)]
    public void DistanceCountsEditsAsAPersonDoes(string a, string b, int expected) => Assert.Equal(expected, ClosestName.Distance(a, b));

    public static TheoryData<string[]> AcceptedCommandLines => new()
    {
        // What the tests' own nodes pass, and ASP.NET's settings in each of its forms.
        new[] { "--data", "/tmp/x", "--listen", "127.0.0.1:0", "--Logging:LogLevel:Default=Warning" },
        new[] { "--urls", "http://127.0.0.1:5000", "--environment", "Development", "--contentRoot", "/tmp" },
        new[] { "--Kestrel:Endpoints:Extra:Url=http://127.0.0.1:7500", "--applicationName=paramdb" },
        new[] { "--ParamDb:Memory", "64m", "ParamDb:Durability=fsync", "/memory", "64m", "--DATA=/tmp/y" },
        new[] { "--max-keys", "-1", "--allowed-hosts", "a.example,b.example" },
    };

    [Theory]
    [MemberData(nameof(AcceptedCommandLines))]
    public void ASPNetsOwnSettingsAndTheNodesSwitchesPassUnchanged(string[] args) => Assert.Equal(args, CommandLine.Check(args));

    [Fact]
    public void FlagsAreKeptFromConfigurationSoTheyTakeNoValue() =>
        Assert.Equal(["--data", "/tmp/x"], CommandLine.Check(["--verbose", "--data", "/tmp/x", "-h"]));

    [Theory]
    [InlineData("--durabilty fsync", "unknown option --durabilty; did you mean --durability?")]
    [InlineData("--data /tmp/x --memroy=4g", "unknown option --memroy; did you mean --memory?")]
    [InlineData("-data /tmp/x", "unknown option -data; did you mean --data?")]
    [InlineData("durability=fsync", "unknown option durability; did you mean --durability?")]
    [InlineData("--zzzzqq 1", "unknown option --zzzzqq; paramdb --help lists the options.")]
    [InlineData("imprt file", "unexpected argument 'imprt'; did you mean the command import?")]
    [InlineData("--data", "--data needs a value.")]
    [InlineData("--AllowedHosts x", "unknown option --AllowedHosts; did you mean --allowed-hosts?")]
    public void AnUnknownSwitchOrArgumentIsRefusedNamingIt(string commandLine, string message)
    {
        var e = Assert.Throws<OptionsException>(() => CommandLine.Check(commandLine.Split(' ')));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public async Task ACommandsUnknownOptionNamesTheClosestOne()
    {
        var error = new StringWriter();
        int code = await Commands.RunAsync(["import", "file", "--tabel", "t"], new CliConsole(new StringWriter(), error, ErrorIsTerminal: false));
        Assert.Equal(2, code);
        Assert.Contains("paramdb import: Unknown option --tabel; did you mean --table?", error.ToString());
    }

    private static Task<(int ExitCode, string Out, string Error)> RunNodeAsync(params string[] args) => NodeProcess.RunToEndAsync(args);

    [Fact]
    public async Task AnUnknownSwitchStopsTheStartWithOneLineAndExitCodeTwo()
    {
        string data = RunningServer.NewTempDirectory();
        var run = await RunNodeAsync("--data", data, "--durabilty", "fsync");
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("paramdb: unknown option --durabilty; did you mean --durability?" + Environment.NewLine, run.Error);
        Assert.False(Directory.Exists(data));   // stopped before anything was opened
    }

    [Fact]
    public async Task AStartFailureIsOneLineAndItsStackTraceOnlyWithVerbose()
    {
        string data = RunningServer.NewTempDirectory();
        var plain = await RunNodeAsync("--data", data, "--memory", "lots");
        Assert.Equal(2, plain.ExitCode);
        Assert.Equal("paramdb: --memory: 'lots' is not a size of at least 16m (e.g. 64m, 4g)." + Environment.NewLine, plain.Error);

        var verbose = await RunNodeAsync("--verbose", "--data", data, "--memory", "lots");
        Assert.Equal(2, verbose.ExitCode);
        Assert.StartsWith("paramdb: --memory: 'lots'", verbose.Error);
        Assert.Contains("   at ParamDb.Server.Options.NodeSettings.From", verbose.Error);
    }

    [Fact]
    public async Task AListenerFromTheKestrelSettingsServesAndIsNamedInTheListeningLine()
    {
        string data = RunningServer.NewTempDirectory();
        string log = Path.GetTempFileName();
        try
        {
            using (var node = await NodeProcess.StartLoggingAsync(data, log, "--Kestrel:Endpoints:Extra:Url=http://127.0.0.1:0"))
            {
                string text = await File.ReadAllTextAsync(log);
                Match extra = ExtraListener().Match(text);
                Assert.True(extra.Success, text);
                Assert.NotEqual(node.Http1, new Uri(extra.Groups[1].Value));
                using var http = new HttpClient { BaseAddress = new Uri(extra.Groups[1].Value) };
                using var reply = await http.GetAsync("/v1/health");
                Assert.Equal(200, (int)reply.StatusCode);
            }
        }
        finally
        {
            File.Delete(log);
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }

    [GeneratedRegex(@"\(HTTP/2 cleartext\), and on (http://[^ ,]+) \(Kestrel settings\); data in ")]
    private static partial Regex ExtraListener();
}
