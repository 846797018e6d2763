using System.Text.Json;
using System.Text.Json.Serialization;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Protocol;

/// <summary>A table as <c>GET /v1/tables/{name}</c> reports it.</summary>
public sealed record TableInfo
{
    /// <summary>Table name.</summary>
    public required string Name { get; init; }
    /// <summary>Normalized schema.</summary>
    public required TableSchema Schema { get; init; }
    /// <summary>Rows stored (rows never pushed are not stored).</summary>
    public long Rows { get; init; }
    /// <summary>Bytes of row values and optimizer state stored.</summary>
    public long Bytes { get; init; }
}

/// <summary>The reply of <c>GET /v1/tables</c>.</summary>
public sealed record TableList
{
    /// <summary>Every table, by name.</summary>
    public required IReadOnlyList<TableInfo> Tables { get; init; }
}

/// <summary>The reply of a push.</summary>
/// <param name="Rows">Rows in the request.</param>
/// <param name="Applied">Rows applied; fewer than <paramref name="Rows"/> when some ranges had already seen this worker's clock.</param>
public sealed record PushResult(long Rows, long Applied);

/// <summary>One row, as <c>GET /v1/tables/{t}/rows/{key}</c> returns it.</summary>
/// <param name="Key">Row key.</param>
/// <param name="Values">The row's dim values.</param>
public sealed record RowReply(ulong Key, float[] Values);

/// <summary>
/// The JSON form of a KV block. Push: <c>{"keys":[1,5],"values":[[…],[…]]}</c> or <c>{"first":0,"values":[…]}</c>;
/// pull: <c>{"keys":[…]}</c> or <c>{"first":0,"count":100}</c>; reply: <c>{"keys":[…],"values":[…]}</c>.
/// </summary>
public sealed record KvJson
{
    /// <summary>Explicit keys, strictly ascending.</summary>
    public ulong[]? Keys { get; init; }
    /// <summary>First key of a dense range.</summary>
    public ulong? First { get; init; }
    /// <summary>Rows of a dense range in a pull (a push counts its values).</summary>
    public int? Count { get; init; }
    /// <summary>One array of dim floats per key.</summary>
    public float[][]? Values { get; init; }
}

/// <summary>The reply of <c>GET /v1/health</c>.</summary>
public sealed record HealthReply
{
    /// <summary><c>ok</c> when serving.</summary>
    public required string Status { get; init; }
    /// <summary>Server version.</summary>
    public required string Version { get; init; }
    /// <summary>HTTP/1.1 address (REST, Swagger UI).</summary>
    public string? Http1 { get; init; }
    /// <summary>HTTP/2 cleartext address (the stream, REST for h2 clients).</summary>
    public string? Http2 { get; init; }
    /// <summary>Number of tables.</summary>
    public int Tables { get; init; }
    /// <summary>Time of the newest checkpoint, if any.</summary>
    public DateTimeOffset? LastCheckpoint { get; init; }
    /// <summary>What this node shipped to its backups since it started; absent on a single node.</summary>
    public ReplicationCounters? Replication { get; init; }
}

/// <summary>
/// Bytes a cluster node moved for replication since it started (docs/replication.md): with W workers pushing the
/// same keys, <see cref="ReplicatedBytes"/> ÷ <see cref="PushedBytes"/> falls towards (R − 1) ÷ W, since a row
/// touched by several pushes while a batch is on the wire is shipped once.
/// </summary>
public sealed record ReplicationCounters
{
    /// <summary>Bytes of values in the pushes this node applied as a primary.</summary>
    public long PushedBytes { get; init; }
    /// <summary>Bytes of record batches (keys, rows with their optimizer state, clocks) sent to backups after pushes, every backup counted.</summary>
    public long ReplicatedBytes { get; init; }
    /// <summary>Bytes of whole ranges sent to backups that were new, or back from being down.</summary>
    public long ResyncedBytes { get; init; }
}

/// <summary>The reply of <c>POST /v1/checkpoint</c>.</summary>
public sealed record CheckpointReply
{
    /// <summary>The checkpoint's token.</summary>
    public required string Token { get; init; }
    /// <summary>Wall time the checkpoint took, in milliseconds.</summary>
    public double DurationMs { get; init; }
    /// <summary>When it completed.</summary>
    public DateTimeOffset CompletedAt { get; init; }
}

/// <summary>An RFC 7807 problem as ParamDb sends it, with the stable <see cref="Code"/>.</summary>
public sealed record ProblemReply
{
    /// <summary>A URI naming the problem type.</summary>
    public string? Type { get; init; }
    /// <summary>Short summary of the status.</summary>
    public string? Title { get; init; }
    /// <summary>HTTP status.</summary>
    public int? Status { get; init; }
    /// <summary>What went wrong, for a person.</summary>
    public string? Detail { get; init; }
    /// <summary>Stable code from <see cref="ProblemCodes"/>.</summary>
    public string? Code { get; init; }
    /// <summary>For <c>clock_wait_timeout</c>: the live workers that had not reached <see cref="Target"/>.</summary>
    public IReadOnlyList<WorkerClock>? Behind { get; init; }
    /// <summary>For <c>clock_wait_timeout</c>: the clock every live worker had to reach.</summary>
    public ulong? Target { get; init; }
}

/// <summary>Source-generated JSON metadata for every wire type: camelCase, nulls omitted.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(TableSchema))]
[JsonSerializable(typeof(TableInfo))]
[JsonSerializable(typeof(TableList))]
[JsonSerializable(typeof(PushResult))]
[JsonSerializable(typeof(RowReply))]
[JsonSerializable(typeof(KvJson))]
[JsonSerializable(typeof(HealthReply))]
[JsonSerializable(typeof(CheckpointReply))]
[JsonSerializable(typeof(ProblemReply))]
[JsonSerializable(typeof(WorkerRegistration))]
[JsonSerializable(typeof(WorkerInfo))]
[JsonSerializable(typeof(WorkerList))]
[JsonSerializable(typeof(WorkerClock))]
[JsonSerializable(typeof(SnapshotRequest))]
[JsonSerializable(typeof(SnapshotInfo))]
[JsonSerializable(typeof(SnapshotList))]
[JsonSerializable(typeof(RestoreReply))]
[JsonSerializable(typeof(ImportReply))]
[JsonSerializable(typeof(ClusterView))]
[JsonSerializable(typeof(JoinRequest))]
[JsonSerializable(typeof(JoinReply))]
[JsonSerializable(typeof(RecordsApplied))]
[JsonSerializable(typeof(RangeDropped))]
[JsonSerializable(typeof(RangeDropRequest))]
public sealed partial class ProtocolJson : JsonSerializerContext;
