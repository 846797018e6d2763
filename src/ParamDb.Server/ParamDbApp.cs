using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using ParamDb.Protocol;
using ParamDb.Server.Endpoints;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Server.OpenApi;
using ParamDb.Server.Options;

namespace ParamDb.Server;

/// <summary>Builds the ParamDb web application; the table of contents of the server.</summary>
public static class ParamDbApp
{
    /// <summary>Builds (but does not start) a node from command-line <paramref name="args"/>.</summary>
    /// <exception cref="OptionsException">An option is unusable or unknown; the message names it.</exception>
    public static WebApplication Build(string[] args) => Build(args, openStore: true);

    /// <summary>
    /// Builds (but does not start) a node from command-line <paramref name="args"/>; without <paramref name="openStore"/>
    /// starting it serves the endpoints' descriptions only: no store is opened and no data directory created. That is
    /// what the build-time OpenAPI generator needs, and it runs in the source tree.
    /// </summary>
    /// <exception cref="OptionsException">An option is unusable or unknown; the message names it.</exception>
    public static WebApplication Build(string[] args, bool openStore)
    {
        bool clusterInit = args.Contains(CommandLine.ClusterInit, StringComparer.OrdinalIgnoreCase);
        args = CommandLine.Check(args);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ApplicationName = typeof(ParamDbApp).Assembly.GetName().Name,
            // appsettings.json ships beside the binary; the working directory only anchors a relative --data.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddCommandLine(args, new Dictionary<string, string>(CommandLine.SwitchMappings));
        if (clusterInit) builder.Configuration.AddInMemoryCollection([new("ParamDb:Cluster:Init", "true")]);

        var options = builder.Configuration.GetSection(ServerOptions.Section).Get<ServerOptions>() ?? new ServerOptions();
        var settings = NodeSettings.From(options);
        var endpoints = new ListenEndpoints();

        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(endpoints);
        builder.Services.AddSingleton<ClusterHost>();
        builder.Services.AddSingleton<StoreHost>();
        if (openStore)
        {
            // In this order: the cluster decides the store's ranges before the store opens, and stops after it.
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterHost>());
            builder.Services.AddHostedService(sp => sp.GetRequiredService<StoreHost>());
            builder.Services.AddHostedService<CheckpointLoop>();
        }
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ProtocolJson.Default);
            o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
        });
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            // Every problem carries a stable code, including the ones ASP.NET writes itself (404 route, 405, 500).
            context.ProblemDetails.Extensions.TryAdd("code", Problems.CodeForStatus(context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode));
        });
        builder.Services.AddExceptionHandler<MetadataExceptionHandler>();
        builder.Services.AddParamDbOpenApi();
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>, LargeBlockMemoryPoolFactory>();

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = settings.MaxBodyBytes;
            // Bulk pushes and pulls are MiB-sized: windows of 64 KiB (the HTTP/2 default) would stall the
            // sender every 64 KiB for a round trip. 16 MiB per connection, 8 MiB per stream.
            kestrel.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
            kestrel.Limits.Http2.InitialStreamWindowSize = 8 * 1024 * 1024;
            kestrel.Limits.Http2.MaxFrameSize = 1024 * 1024;
            endpoints.Http1 = Listen(kestrel, settings.Http1, HttpProtocols.Http1);
            endpoints.Http2 = Listen(kestrel, settings.Http2, HttpProtocols.Http2);
        });

        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseBrowserGuard();
        app.UseStatusCodePages();
        app.UseParamDbOpenApi();
        app.UsePeerCheck(settings);
        app.UseRouting();
        app.UseStoreGate();
        app.MapTables();
        app.MapData();
        app.MapExport();
        app.MapSnapshots();
        app.MapImport();
        app.MapRecords();
        app.MapWorkers();
        app.MapAdmin();
        app.MapCluster();
        app.MapStream();

        if (openStore)
        {
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ParamDb");
            var server = app.Services.GetRequiredService<IServer>();
            app.Lifetime.ApplicationStarted.Register(() => LogListening(logger, settings, endpoints, server));
        }
        return app;
    }

    /// <summary>
    /// Says where the node listens, naming also the listeners opened through ASP.NET's own <c>Kestrel</c> settings
    /// (<c>--Kestrel:Endpoints:NAME:Url=…</c>): they serve everything the HTTP/1.1 port does, and an operator who
    /// did not see them in the log would not know the node is reachable there.
    /// </summary>
    private static void LogListening(ILogger logger, NodeSettings settings, ListenEndpoints endpoints, IServer server)
    {
        int?[] ours = [endpoints.Http1?.IPEndPoint?.Port, endpoints.Http2?.IPEndPoint?.Port];
        var extra = (server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
            .Where(a => !Uri.TryCreate(a, UriKind.Absolute, out Uri? uri) || !ours.Contains(uri.Port))
            .ToList();
        if (extra.Count == 0)
            logger.Listening(AdminEndpoints.Version, endpoints.Http1Url, endpoints.Http2Url, settings.DataDirectory);
        else
            logger.ListeningWithExtra(AdminEndpoints.Version, endpoints.Http1Url, endpoints.Http2Url, string.Join(", ", extra), settings.DataDirectory);
    }

    private static ListenOptions Listen(KestrelServerOptions kestrel, ListenAddress address, HttpProtocols protocols)
    {
        ListenOptions? captured = null;
        void Configure(ListenOptions o)
        {
            o.Protocols = protocols;
            captured = o;
        }
        if (address.Address is null) kestrel.ListenLocalhost(address.Port, Configure);
        else kestrel.Listen(address.Address, address.Port, Configure);
        return captured!;
    }
}
