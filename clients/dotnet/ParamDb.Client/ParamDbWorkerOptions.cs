using ParamDb.Protocol;

namespace ParamDb.Client;

/// <summary>Settings of a <see cref="ParamDbWorker"/>; every property has a working default.</summary>
public sealed record ParamDbWorkerOptions
{
    /// <summary>The stream's limits, replay and compression (<see cref="ParamDbStreamOptions"/>).</summary>
    public ParamDbStreamOptions Stream { get; init; } = new();

    /// <summary>
    /// Consistency of pulls that do not name one, by default <see cref="Protocol.Consistency.Eventual"/> (never waits,
    /// as ps-lite's asynchronous mode). <see cref="Protocol.Consistency.Sequential"/> is BSP; <c>Bounded(τ)</c> is SSP.
    /// </summary>
    public Consistency Consistency { get; init; } = Consistency.Eventual;

    /// <summary>
    /// Where the REST calls (register, heartbeat, leave) go, e.g. the HTTP/1.1 port <c>http://host:7420</c>. Null
    /// (default): over HTTP/2 to the stream's address, on the stream's own connection.
    /// </summary>
    public Uri? RestAddress { get; init; }

    /// <summary>How often the lease is renewed; null (default): a third of the lease, so two heartbeats may be lost.</summary>
    public TimeSpan? HeartbeatInterval { get; init; }

    /// <summary>Time allowed for one REST call, by default 10 s.</summary>
    public TimeSpan RestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether pushes, pulls and ticks go straight to the nodes that own their keys when the server is a cluster,
    /// over one stream per node (<see cref="ParamDbRouting.Auto"/>, the default), or all over the one stream to the
    /// registration address, whose node forwards them (<see cref="ParamDbRouting.Off"/>).
    /// </summary>
    public ParamDbRouting Routing { get; init; } = ParamDbRouting.Auto;
}
