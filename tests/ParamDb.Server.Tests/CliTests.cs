using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Server.Cli;

namespace ParamDb.Server.Tests;

/// <summary>The <c>paramdb</c> commands run in-process against a real node, with stdout and stderr captured.</summary>
public sealed class CliTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("paramdb-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private sealed record Run(int ExitCode, string Out, string Error);

    private static async Task<Run> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await Commands.RunAsync(args, new CliConsole(output, error, ErrorIsTerminal: false));
        return new Run(code, output.ToString(), error.ToString());
    }

    private string Url => fixture.Server.Http1Uri.ToString();

    private string WriteFile(byte[] bytes)
    {
        string path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public async Task ImportStreamsTheFileShowsProgressPrintsTheResultAndExitsZero()
    {
        var name = ServerFixture.NewTable("cli");
        byte[] file = ImportFiles.Make([2, 3, 5]);
        string path = WriteFile(file);

        var run = await RunAsync("import", path, "--table", name, "--url", Url);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal($"Imported 3 rows ({file.Length} B) into new table '{name}' (dim 2).", run.Out.Trim());
        Assert.Contains($"100% {file.Length} B / {file.Length} B", run.Error);   // the bar's last line, plain since stderr is no terminal
        Assert.Contains("checking the file and applying it", run.Error);
        Assert.Equal(ImportFiles.ValuesOf(3), await Wire.PullAsync(fixture.Http, name, [2, 3, 5]));

        var again = await RunAsync("import", path, "--table=" + name, "--url=" + Url);
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("into existing table", again.Out);
    }

    [Fact]
    public async Task ARefusedImportPrintsTheProblemsDetailAndExitsOne()
    {
        var name = ServerFixture.NewTable("cli");
        await Wire.CreateTableAsync(fixture.Http, name, """{"dim":3}""");
        string path = WriteFile(ImportFiles.Make([1]));

        var run = await RunAsync("import", path, "--table", name, "--url", Url);

        Assert.Equal(1, run.ExitCode);
        Assert.Empty(run.Out);
        Assert.Contains("paramdb import: 409 table_exists: ", run.Error);
        Assert.Contains("dim: the table has 3, the file 2", run.Error);
        Assert.Equal(0, (await fixture.Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo))!.Rows);
    }

    [Fact]
    public async Task ABadFileIsTheNodesProblemAndExitsOne()
    {
        var run = await RunAsync("import", WriteFile(ImportFiles.Make([2, 1])), "--table", ServerFixture.NewTable("cli"), "--url", Url);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("400 unsorted_keys", run.Error);
    }

    [Fact]
    public async Task ANodeThatCannotBeReachedExitsOne()
    {
        var run = await RunAsync("import", WriteFile(ImportFiles.Make([1])), "--table", "t", "--url", "http://127.0.0.1:1");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("could not reach the node", run.Error);
    }

    [Theory]
    [InlineData("no file", "import --table t")]
    [InlineData("no table", "import FILE")]
    [InlineData("two files", "import FILE FILE --table t")]
    [InlineData("unknown option", "import FILE --table t --force")]
    [InlineData("option without value", "import FILE --table")]
    [InlineData("option twice", "import FILE --table t --table u")]
    [InlineData("invalid table name", "import FILE --table no/slash")]
    [InlineData("missing file", "import /nonexistent/file.safetensors --table t")]
    [InlineData("not an http url", "import FILE --table t --url ftp://host")]
    public async Task AUsageErrorPrintsTheUsageAndExitsTwo(string what, string commandLine)
    {
        string path = WriteFile(ImportFiles.Make([1]));
        string[] args = commandLine.Replace("FILE", path).Split(' ');

        var run = await RunAsync([.. args, .. (commandLine.Contains("--url") ? Array.Empty<string>() : ["--url", Url])]);

        Assert.True(run.ExitCode == 2, $"{what}: exit {run.ExitCode}, {run.Error}");
        Assert.Contains("Usage: paramdb import FILE --table T [--url URL]", run.Error);
        Assert.Empty(run.Out);
    }

    [Fact]
    public async Task HelpPrintsTheCommandsArgumentsAndExitsZero()
    {
        var run = await RunAsync("import", "--help");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--table T", run.Out);
        Assert.Contains("paramdb import FILE --table T [--url URL]", Commands.Overview);
    }

    [Fact]
    public void OnlyACommandWordStartsTheCommandLineInsteadOfANode()
    {
        Assert.True(Commands.IsCommand(["import", "x"]));
        Assert.False(Commands.IsCommand([]));
        Assert.False(Commands.IsCommand(["--data", "import"]));
        Assert.False(Commands.IsCommand(["--help"]));
    }
}

/// <summary>The progress bar against a clock the test moves.</summary>
public sealed class ProgressBarTests
{
    private sealed class ManualClock : TimeProvider
    {
        public long Ticks { get; set; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Ticks;

        public void Advance(TimeSpan by) => Ticks += by.Ticks;
    }

    private static string[] Lines(StringWriter output) => output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void WithoutATerminalItPrintsALineAtTenthsAtMostOneASecondAndTheLast()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var bar = new ProgressBar(output, "Uploading f", total: 1000, interactive: false, clock);

        bar.Advance(50);                       // 5 %: no tenth crossed
        clock.Advance(TimeSpan.FromSeconds(2));
        bar.Advance(100);                      // 15 %: a line
        bar.Advance(300);                      // 45 %, but within a second of the last line
        clock.Advance(TimeSpan.FromSeconds(1));
        bar.Advance(50);                       // 50 %: a line
        bar.Complete("sent");

        string[] lines = Lines(output);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("Uploading f [####--------------------------]  15% 150 B / 1000 B, ", lines[0]);
        Assert.Contains(" 50% 500 B / 1000 B, 167 B/s", lines[1]);   // 500 B in 3 s
        Assert.Contains(" 50% ", lines[2]);                             // Complete draws the state as it is
        Assert.Equal("sent", lines[3]);
        Assert.DoesNotContain('\r', output.ToString());
    }

    [Fact]
    public void WithoutATerminalAnUnknownTotalPrintsALineEveryTenSeconds()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var bar = new ProgressBar(output, "Downloading f", total: null, interactive: false, clock);

        clock.Advance(TimeSpan.FromSeconds(9));
        bar.Advance(3 << 20);
        clock.Advance(TimeSpan.FromSeconds(1));
        bar.Advance(2 << 20);
        bar.Complete();
        bar.Complete();   // only the first draws

        Assert.Equal(["Downloading f 5.00 MiB, 512 KiB/s", "Downloading f 5.00 MiB, 512 KiB/s"], Lines(output));
    }

    [Fact]
    public void OnATerminalItRedrawsOneLineInPlaceAtMostTenTimesASecond()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var bar = new ProgressBar(output, "Up", total: 4, interactive: true, clock);

        clock.Advance(TimeSpan.FromMilliseconds(100));
        bar.Advance(2);
        bar.Advance(1);   // too soon: not drawn
        bar.Complete();

        string text = output.ToString();
        Assert.Equal(2, text.Count(c => c == '\r'));
        Assert.Contains("\rUp [###############---------------]  50% 2 B / 4 B, 20 B/s", text);
        Assert.EndsWith(" 75% 3 B / 4 B, 30 B/s" + Environment.NewLine, text);
    }

    [Fact]
    public async Task CopyMovesEveryByteAndCountsThem()
    {
        var bytes = new byte[3 << 20];
        new Random(1).NextBytes(bytes);
        var destination = new MemoryStream();
        var bar = new ProgressBar(TextWriter.Null, "x", bytes.Length, interactive: false);
        await bar.CopyAsync(new MemoryStream(bytes), destination);
        Assert.Equal(bytes, destination.ToArray());
        Assert.Equal(bytes.Length, bar.Done);
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(1023, "1023 B")]
    [InlineData(1536, "1.50 KiB")]
    [InlineData(12.3 * 1024 * 1024, "12.3 MiB")]
    [InlineData(264e6, "252 MiB")]
    [InlineData(1.3 * 1024 * 1024 * 1024, "1.30 GiB")]
    public void BytesAreFormattedForPeople(double bytes, string expected) => Assert.Equal(expected, ProgressBar.FormatBytes(bytes));
}
