namespace ParamDb.Protocol;

/// <summary>
/// The reply of <c>POST /v1/tables/{table}/import</c> (docs/export.md): 201 when the import created the table, 200
/// when it overwrote rows of an existing table of the same schema.
/// <code>{"table":"emb","created":true,"rows":1000000,"bytes":264000272,"nonFiniteValues":0,"schema":{"dim":64,…}}</code>
/// </summary>
public sealed record ImportReply
{
    /// <summary>The table imported into.</summary>
    public required string Table { get; init; }

    /// <summary>True when the import created the table from the file's schema; false when it existed.</summary>
    public bool Created { get; init; }

    /// <summary>Rows imported: the file's n. Each was overwritten (or created) with the file's values.</summary>
    public long Rows { get; init; }

    /// <summary>Bytes of the file received.</summary>
    public long Bytes { get; init; }

    /// <summary>Values among the rows that are NaN or ±Infinity, stored as they are: 0 unless the schema has <c>allowNonFinite</c>, without which such a file is refused.</summary>
    public long NonFiniteValues { get; init; }

    /// <summary>The table's schema, normalized: the file's.</summary>
    public required TableSchema Schema { get; init; }
}
