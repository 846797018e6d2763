namespace ParamDb.Protocol.Cluster;

/// <summary>What a peer's <c>POST /v1/tables/{table}/records</c> wrote (docs/replication.md).</summary>
/// <param name="Batches">Record batches written.</param>
/// <param name="Records">Records in them.</param>
public sealed record RecordsApplied(int Batches, long Records);

/// <summary>The body of a peer's <c>POST /v1/tables/{table}/ranges/drop</c>: the ranges to drop, by the ring tokens that end them.</summary>
/// <param name="Tokens">Decimal u64 tokens, at least one.</param>
public sealed record RangeDropRequest(IReadOnlyList<string>? Tokens);

/// <summary>What a peer's <c>DELETE /v1/tables/{table}/ranges/{token}</c> or <c>POST …/ranges/drop</c> deleted.</summary>
/// <param name="Rows">Rows that existed and are gone.</param>
public sealed record RangeDropped(long Rows);
