using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>
/// One real node shared by the tests of a class; each test uses its own table names. A subclass passes options
/// for a node configured differently (e.g. <see cref="SmallLimitServer"/>).
/// </summary>
public class ServerFixture : IAsyncLifetime
{
    private readonly string[] _options;

    public ServerFixture() : this([])
    {
    }

    // Protected: xunit wants a fixture to have one public constructor.
    protected ServerFixture(params string[] options) => _options = options;

    public RunningServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await RunningServer.StartAsync(null, _options);
        Http = Server.CreateClient();
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }

    private static int _next;

    /// <summary>A table name unique within the test run.</summary>
    public static string NewTable(string prefix = "t") => $"{prefix}-{Interlocked.Increment(ref _next)}";
}
