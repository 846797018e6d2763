using ParamDb.Cluster.Metadata;
using ParamDb.Cluster.Wire;
using ParamDb.Protocol;

namespace ParamDb.Cluster.Commands;

/// <summary>
/// Creates a table with the next table id. If the name exists with an equal schema the result is
/// <see cref="CommandOutcome.AlreadyExists"/>, with another schema <see cref="CommandOutcome.Conflict"/>; both
/// carry the existing id, so retrying a create is safe.
/// <para>
/// <see cref="Prepare"/> normalizes the schema (<see cref="TableSchema.TryNormalize"/>) before it enters the log;
/// applying compares schemas by equality and never normalizes, so replaying an old log does not depend on how a
/// later build fills defaults.
/// </para>
/// <code>05 00 | 01 | str16 name | u32 length | UTF-8 JSON of the schema</code>
/// </summary>
/// <param name="Name">Table name (<see cref="TableNames"/>).</param>
/// <param name="Schema">The schema; normalized by <see cref="Prepare"/>.</param>
public sealed record CreateTable(string Name, TableSchema Schema) : ClusterCommand
{
    /// <inheritdoc/>
    public override CommandId Id => CommandId.CreateTable;

    /// <summary>Validates the name and the schema, and returns the command with the schema normalized.</summary>
    public override ClusterCommand Prepare()
    {
        if (Problem() is { } problem) throw new ArgumentException(problem);
        if (!Schema.TryNormalize(out var normalized, out var error))
            throw new ArgumentException($"Table {Name}: {error.Detail}");
        return this with { Schema = normalized };
    }

    internal override string? Problem() =>
        !TableNames.IsValid(Name) ? TableCommand.BadName(Name)
        : Schema is null ? $"Table {Name}: the schema is missing." : null;

    internal override void WriteBody(WireWriter writer)
    {
        writer.WriteString16(Name);
        writer.WriteSchema(Schema);
    }

    internal static CreateTable ReadBody(ref WireReader reader) =>
        new(reader.ReadString16("table name"), MetadataFields.ReadSchema(ref reader));

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (state.Tables.TryGetValue(Name, out var existing))
        {
            result = existing.Schema == Schema
                ? Outcome(CommandOutcome.AlreadyExists, existing.Id)
                : Outcome(CommandOutcome.Conflict, existing.Id, $"Table {Name} exists with another schema.");
            return state;
        }
        if (state.NextTableId == uint.MaxValue)
        {
            result = Outcome(CommandOutcome.Invalid, detail: "Table ids are exhausted.");
            return state;
        }
        uint id = state.NextTableId;
        result = Outcome(CommandOutcome.Created, id);
        return state with { Tables = state.Tables.Add(Name, new TableEntry(Name, id, Schema)), NextTableId = id + 1 };
    }
}

/// <summary>
/// Deletes a table; its id is never reused. An unknown name is <see cref="CommandOutcome.NotFound"/>.
/// <code>06 00 | 01 | str16 name</code>
/// </summary>
/// <param name="Name">Table name.</param>
public sealed record DeleteTable(string Name) : ClusterCommand
{
    /// <inheritdoc/>
    public override CommandId Id => CommandId.DeleteTable;

    internal override string? Problem() => TableNames.IsValid(Name) ? null : TableCommand.BadName(Name);

    internal override void WriteBody(WireWriter writer) => writer.WriteString16(Name);

    internal static DeleteTable ReadBody(ref WireReader reader) => new(reader.ReadString16("table name"));

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (!state.Tables.TryGetValue(Name, out var existing))
        {
            result = Outcome(CommandOutcome.NotFound, detail: $"No table {Name}.");
            return state;
        }
        result = Outcome(CommandOutcome.Applied, existing.Id);
        return state with { Tables = state.Tables.Remove(Name) };
    }
}

/// <summary>Rules shared by the table commands.</summary>
internal static class TableCommand
{
    public static string BadName(string name) =>
        $"Table name must match [A-Za-z0-9_.-]{{1,{TableNames.MaxLength}}} and not be . or ..; got \"{name}\".";
}
