using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using ParamDb.Server;
using ParamDb.Server.Hosting;

namespace ParamDb.Testing;

/// <summary>
/// A real ParamDb node in this process: Kestrel on 127.0.0.1 with OS-chosen ports and a FASTER store in a
/// temporary directory (deleted on dispose unless the caller gave the directory).
/// </summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _ownsDirectory;
    private readonly string[] _extraArgs;
    private bool _stopped;

    private RunningServer(WebApplication app, string dataDirectory, bool ownsDirectory, string[] extraArgs)
    {
        _app = app;
        _ownsDirectory = ownsDirectory;
        _extraArgs = extraArgs;
        DataDirectory = dataDirectory;
        var endpoints = app.Services.GetRequiredService<ListenEndpoints>();
        Http1Uri = new Uri(endpoints.Http1Url!);
        Http2Uri = new Uri(endpoints.Http2Url!);
    }

    /// <summary>The HTTP/1.1 base address.</summary>
    public Uri Http1Uri { get; }

    /// <summary>The HTTP/2 cleartext base address.</summary>
    public Uri Http2Uri { get; }

    /// <summary>The data directory.</summary>
    public string DataDirectory { get; }

    /// <summary>The application's services, for white-box checks.</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>A fresh temporary directory path (not created).</summary>
    public static string NewTempDirectory() => Path.Combine(Path.GetTempPath(), "paramdb-test-" + Guid.NewGuid().ToString("N"));

    /// <summary>Starts a node; extra args override the test defaults (e.g. <c>--max-body-size 64k</c>).</summary>
    public static Task<RunningServer> StartAsync(string? dataDirectory = null, params string[] extraArgs) =>
        StartAsync(dataDirectory ?? NewTempDirectory(), ownsDirectory: dataDirectory is null, extraArgs);

    private static async Task<RunningServer> StartAsync(string dataDirectory, bool ownsDirectory, string[] extraArgs)
    {
        string[] args =
        [
            "--data", dataDirectory,
            "--listen", "127.0.0.1:0",
            "--listen-h2", "127.0.0.1:0",
            "--memory", "64m",
            "--checkpoint-interval", "0",
            "--Logging:LogLevel:Default=Warning",
            .. extraArgs,
        ];
        var app = ParamDbApp.Build(args);
        await app.StartAsync();
        return new RunningServer(app, dataDirectory, ownsDirectory, extraArgs);
    }

    /// <summary>An HTTP/1.1 client for this node.</summary>
    public HttpClient CreateClient() => new() { BaseAddress = Http1Uri };

    /// <summary>An HTTP/2 (prior knowledge) client for the h2c port.</summary>
    public HttpClient CreateHttp2Client() => new()
    {
        BaseAddress = Http2Uri,
        DefaultRequestVersion = System.Net.HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    /// <summary>Stops cleanly (with the shutdown checkpoint) and starts a new node on the same data directory.</summary>
    public async Task<RunningServer> RestartAsync()
    {
        await StopAsync();
        // The new instance inherits the directory; this one must no longer delete it on dispose.
        bool owns = _ownsDirectory;
        _ownsDirectory = false;
        return await StartAsync(DataDirectory, owns, _extraArgs);
    }

    private async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsDirectory && Directory.Exists(DataDirectory))
        {
            try { Directory.Delete(DataDirectory, recursive: true); }
            catch (IOException) { /* a file still closing; the temp dir is cleaned by the OS */ }
        }
    }
}
