using System.Diagnostics;
using System.Text.RegularExpressions;

namespace ParamDb.Testing;

/// <summary>
/// The real <c>paramdb</c> executable as a child process on OS-chosen loopback ports; its address is read from
/// the log line it prints once it listens. For tests that signal or kill a node.
/// </summary>
public sealed partial class NodeProcess : IDisposable
{
    /// <summary>The child process.</summary>
    public required Process Process { get; init; }

    /// <summary>Its HTTP/1.1 endpoint.</summary>
    public required Uri Http1 { get; init; }

    /// <summary>A start command for <c>paramdb.dll</c> beside this assembly, with <paramref name="args"/>.</summary>
    public static ProcessStartInfo Command(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "paramdb.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_NOLOGO"] = "1";
        return info;
    }

    /// <summary>
    /// Runs <c>paramdb</c> with <paramref name="args"/> to its end (at most 120 s): a command, or a node start that
    /// is expected to fail. Returns its exit code and what it wrote to stdout and stderr.
    /// </summary>
    public static async Task<(int ExitCode, string Out, string Error)> RunToEndAsync(params string[] args)
    {
        using var p = Process.Start(Command(args))!;
        Task<string> output = p.StandardOutput.ReadToEndAsync(), error = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        return (p.ExitCode, await output, await error);
    }

    /// <summary>Starts a node on <paramref name="data"/> and waits (at most 120 s) until it listens.</summary>
    /// <param name="data">Data directory.</param>
    /// <param name="extraArgs">More options, e.g. <c>--durability fsync</c>.</param>
    public static Task<NodeProcess> StartAsync(string data, params string[] extraArgs) => StartLoggingAsync(data, null, extraArgs);

    /// <summary>
    /// Like <see cref="StartAsync(string, string[])"/>, appending the node's output to <paramref name="logFile"/>.
    /// A name of its own: as an overload, <c>StartAsync(data, "--checkpoint-interval", "0")</c> bound the switch
    /// to the log file and the node ran with the default interval.
    /// </summary>
    public static Task<NodeProcess> StartLoggingAsync(string data, string? logFile, params string[] extraArgs) =>
        StartWithEnvironmentAsync(data, logFile, null, extraArgs);

    /// <summary>
    /// Like <see cref="StartLoggingAsync"/>, with variables added to the node's environment (e.g.
    /// <c>PARAMDB_FAILPOINTS</c>).
    /// </summary>
    public static async Task<NodeProcess> StartWithEnvironmentAsync(string data, string? logFile, IReadOnlyDictionary<string, string>? environment, params string[] extraArgs)
    {
        string[] args = ["--data", data, "--listen", "127.0.0.1:0", "--listen-h2", "127.0.0.1:0", "--memory", "64m", .. extraArgs];
        ProcessStartInfo command = Command(args);
        if (environment is not null)
            foreach (var (name, value) in environment) command.Environment[name] = value;
        var p = Process.Start(command)!;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var opening = new System.Text.StringBuilder();   // what the node said while opening its store (recovery)
        while (await p.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
        {
            opening.AppendLine(line);
            var match = ListeningLine().Match(line);
            if (match.Success)
            {
                // Keep draining the output so the child never blocks on a full pipe.
                // Unbuffered: a test reads the log while the node runs (LogTails), and a line held in a 4 KiB file
                // buffer is not there yet; a node's lines after its listening line stayed invisible for seconds.
                Stream sink = logFile is null ? Stream.Null : new FileStream(logFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
                byte[] head = System.Text.Encoding.UTF8.GetBytes(opening.ToString());
                await sink.WriteAsync(head, deadline.Token);
                await sink.FlushAsync(deadline.Token);
                _ = p.StandardOutput.BaseStream.CopyToAsync(sink).ContinueWith(_ => sink.Dispose(), TaskScheduler.Default);
                _ = p.StandardError.BaseStream.CopyToAsync(Stream.Null);
                return new NodeProcess { Process = p, Http1 = new Uri(match.Groups[1].Value) };
            }
        }
        string error = await p.StandardError.ReadToEndAsync();
        if (!p.HasExited) p.Kill();
        throw new InvalidOperationException("paramdb exited before it said where it listens: " + error);
    }

    [GeneratedRegex(@"listening on (http://\S+) \(HTTP/1\.1")]
    private static partial Regex ListeningLine();

    /// <summary>SIGKILL: the process gets no chance to write, flush or checkpoint anything.</summary>
    public async Task KillAsync()
    {
        Process.Kill();   // SIGKILL on Linux
        await Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.WaitForExit();
        Process.Dispose();
    }
}
