namespace ParamDb.Protocol.Cluster;

/// <summary>What a peer's <c>POST /v1/tables/{table}/records</c> wrote (docs/replication.md).</summary>
/// <param name="Batches">Record batches written.</param>
/// <param name="Records">Records in them.</param>
public sealed record RecordsApplied(int Batches, long Records);

/// <summary>What a peer's <c>DELETE /v1/tables/{table}/ranges/{token}</c> deleted.</summary>
/// <param name="Rows">Rows that existed and are gone.</param>
public sealed record RangeDropped(long Rows);
