using System.Reflection;

namespace ParamDb.Server.OpenApi;

/// <summary>Swashbuckle registration: the document at <c>/swagger/v1/swagger.json</c>, Swagger UI at <c>/swagger</c>.</summary>
public static class OpenApiSetup
{
    /// <summary>Registers the generator.</summary>
    public static IServiceCollection AddParamDbOpenApi(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc("v1", new()
            {
                Title = "ParamDb",
                Version = "v1",
                Description = "A parameter database for machine learning: tables of (uint64 key → float32[dim]) rows, "
                    + "pushed through a server-side updater and pulled by key. Bulk bodies are KV blocks "
                    + "(application/x-paramdb-kv, binary, layout in docs/wire-format.md) or JSON; errors are RFC 7807 "
                    + "problem details with a stable `code`.",
            });
            o.OperationFilter<KvBlockBodyFilter>();
            var xml = Path.Combine(AppContext.BaseDirectory, $"{Assembly.GetExecutingAssembly().GetName().Name}.xml");
            if (File.Exists(xml)) o.IncludeXmlComments(xml);
        });
        return services;
    }

    /// <summary>Serves the document and the UI.</summary>
    public static WebApplication UseParamDbOpenApi(this WebApplication app)
    {
        app.UseSwagger();
        app.UseSwaggerUI(o =>
        {
            o.SwaggerEndpoint("/swagger/v1/swagger.json", "ParamDb v1");
            o.RoutePrefix = "swagger";
        });
        return app;
    }
}
