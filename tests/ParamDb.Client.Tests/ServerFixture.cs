using ParamDb.Client;
using ParamDb.Testing;

namespace ParamDb.Client.Tests;

/// <summary>
/// One real node shared by every test in the <see cref="ServerCollection"/>, with a client per compression
/// mode; each test uses its own table names, so tests never see each other's rows.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private static int _next;

    public RunningServer Server { get; private set; } = null!;

    /// <summary>Plain KV blocks over HTTP/1.1.</summary>
    public ParamDbClient Client { get; private set; } = null!;

    /// <summary>LZ4-framed KV blocks both ways over HTTP/1.1.</summary>
    public ParamDbClient Lz4Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await RunningServer.StartAsync();
        Client = new ParamDbClient(Server.Http1Uri);
        Lz4Client = new ParamDbClient(Server.Http1Uri, new ParamDbClientOptions { Compression = ParamDbCompression.Lz4 });
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        Lz4Client.Dispose();
        await Server.DisposeAsync();
    }

    /// <summary>The client for a compression mode.</summary>
    public ParamDbClient For(ParamDbCompression compression) => compression == ParamDbCompression.Lz4 ? Lz4Client : Client;

    /// <summary>A table name unique within the test run.</summary>
    public static string NewTable(string prefix = "c") => $"{prefix}-{Interlocked.Increment(ref _next)}";
}

/// <summary>The tests that share one <see cref="ServerFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}
