using ParamDb.Cluster.Metadata;
using ParamDb.Cluster.Wire;
using ParamDb.Protocol;

namespace ParamDb.Cluster.Commands;

/// <summary>
/// Registers a worker with the next worker id (<see cref="CommandOutcome.Created"/>). Not idempotent: each
/// applied registration is a new worker, so a proposer that lost its answer (leader change) and retries may
/// leave an orphan, which its lease then removes.
/// <code>07 00 | 01 | str16 name | u16 count | count × str16 table | u32 leaseMs</code>
/// </summary>
/// <param name="Name">A name for people and logs, 1…128 characters.</param>
/// <param name="Tables">The tables whose consistent pulls wait for it; empty means every table.</param>
/// <param name="LeaseMs">Lease, <see cref="WorkerLimits.MinLeaseMs"/>…<see cref="WorkerLimits.MaxLeaseMs"/>.</param>
public sealed record RegisterWorker(string Name, IReadOnlyList<string> Tables, int LeaseMs) : ClusterCommand
{
    /// <inheritdoc/>
    public override CommandId Id => CommandId.RegisterWorker;

    internal override string? Problem()
    {
        if (string.IsNullOrEmpty(Name) || Name.Length > WorkerLimits.MaxNameLength)
            return $"Worker name must be 1…{WorkerLimits.MaxNameLength} characters.";
        if (Tables is null) return "Worker tables must be a list (empty for every table).";
        if (Tables.Count > WorkerLimits.MaxTables) return $"A worker names at most {WorkerLimits.MaxTables} tables; got {Tables.Count}.";
        foreach (string table in Tables)
            if (!TableNames.IsValid(table)) return TableCommand.BadName(table);
        if (LeaseMs is < WorkerLimits.MinLeaseMs or > WorkerLimits.MaxLeaseMs)
            return $"Lease must be {WorkerLimits.MinLeaseMs}…{WorkerLimits.MaxLeaseMs} ms; got {LeaseMs}.";
        return null;
    }

    internal override void WriteBody(WireWriter writer)
    {
        writer.WriteString16(Name);
        writer.WriteStrings16(Tables);
        writer.WriteU32((uint)LeaseMs);
    }

    internal static RegisterWorker ReadBody(ref WireReader reader)
    {
        string name = reader.ReadString16("worker name");
        string[] tables = MetadataFields.ReadStrings16(ref reader, "worker table");
        uint lease = reader.ReadU32();
        // Out-of-range leases decode to a value Problem() rejects, so they apply as Invalid rather than wrap.
        return new RegisterWorker(name, tables, lease > int.MaxValue ? -1 : (int)lease);
    }

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (state.NextWorkerId == uint.MaxValue)
        {
            result = Outcome(CommandOutcome.Invalid, detail: "Worker ids are exhausted.");
            return state;
        }
        uint id = state.NextWorkerId;
        result = Outcome(CommandOutcome.Created, id);
        var worker = new WorkerEntry(id, Name, [.. Tables], LeaseMs);
        return state with { Workers = state.Workers.Add(id, worker), NextWorkerId = id + 1 };
    }

    /// <summary>Equal when every field is, the tables compared in order.</summary>
    public bool Equals(RegisterWorker? other) =>
        other is not null && Name == other.Name && LeaseMs == other.LeaseMs
        && Tables.SequenceEqual(other.Tables, StringComparer.Ordinal);

    /// <summary>A hash of the fields, consistent with <see cref="Equals(RegisterWorker?)"/>.</summary>
    public override int GetHashCode() => HashCode.Combine(Name, LeaseMs, Tables.Count);
}

/// <summary>Why a worker was removed; a byte on the wire, values never renumbered.</summary>
public enum WorkerRemovalReason : byte
{
    /// <summary>The worker deregistered itself.</summary>
    Deregistered = 0,

    /// <summary>Its lease expired (proposed by the leader's lease tracker).</summary>
    LeaseExpired = 1,

    /// <summary>An operator removed it.</summary>
    Operator = 2,
}

/// <summary>
/// Removes a worker; its id is never reused. An unknown id is <see cref="CommandOutcome.NotFound"/> (so a lease
/// expiry racing a deregistration is harmless).
/// <code>08 00 | 01 | u32 worker id | u8 reason</code>
/// </summary>
/// <param name="WorkerId">The worker.</param>
/// <param name="Reason">Why; recorded in the log for people.</param>
public sealed record RemoveWorker(uint WorkerId, WorkerRemovalReason Reason) : ClusterCommand
{
    /// <inheritdoc/>
    public override CommandId Id => CommandId.RemoveWorker;

    internal override string? Problem() =>
        WorkerId == 0 ? "Worker ids start at 1."
        : !Enum.IsDefined(Reason) ? $"Unknown removal reason {(byte)Reason}." : null;

    internal override void WriteBody(WireWriter writer)
    {
        writer.WriteU32(WorkerId);
        writer.WriteU8((byte)Reason);
    }

    internal static RemoveWorker ReadBody(ref WireReader reader) => new(reader.ReadU32(), (WorkerRemovalReason)reader.ReadU8());

    private protected override ClusterState ApplyCore(ClusterState state, out CommandResult result)
    {
        if (!state.Workers.ContainsKey(WorkerId))
        {
            result = Outcome(CommandOutcome.NotFound, WorkerId, $"No worker {WorkerId}.");
            return state;
        }
        result = Outcome(CommandOutcome.Applied, WorkerId);
        return state with { Workers = state.Workers.Remove(WorkerId) };
    }
}
