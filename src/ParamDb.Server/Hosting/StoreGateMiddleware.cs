namespace ParamDb.Server.Hosting;

/// <summary>Puts every request that may use the live store through <see cref="StoreHost.Gate"/>.</summary>
public static class StoreGateMiddleware
{
    /// <summary>
    /// Adds the gate after routing, so a route marked <see cref="OutsideStoreGate"/> (snapshot reads, the restore
    /// itself, which waits for the gate to drain) skips it.
    /// </summary>
    public static IApplicationBuilder UseStoreGate(this IApplicationBuilder app)
    {
        var host = app.ApplicationServices.GetRequiredService<StoreHost>();
        return app.Use(async (context, next) =>
        {
            if (context.GetEndpoint()?.Metadata.GetMetadata<OutsideStoreGate>() is not null)
            {
                await next(context);
                return;
            }
            using StoreGate.Pass pass = await host.Gate.EnterAsync(context.RequestAborted);
            await next(context);
        });
    }
}
