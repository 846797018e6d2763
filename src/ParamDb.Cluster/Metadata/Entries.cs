using ParamDb.Protocol;

namespace ParamDb.Cluster.Metadata;

/// <summary>A table of the cluster: its name, the cluster-wide id the state machine gave it, and its schema.</summary>
/// <param name="Name">Table name (<see cref="TableNames"/>).</param>
/// <param name="Id">Cluster-wide id, from 1, never reused.</param>
/// <param name="Schema">The normalized schema.</param>
public sealed record TableEntry(string Name, uint Id, TableSchema Schema);

/// <summary>A registered worker: the cluster-wide id the state machine gave it, its name, tables and lease.</summary>
/// <param name="Id">Cluster-wide id, from 1, never reused.</param>
/// <param name="Name">A name for people and logs.</param>
/// <param name="Tables">The tables whose consistent pulls wait for it; empty means every table.</param>
/// <param name="LeaseMs">Lease in milliseconds.</param>
public sealed record WorkerEntry(uint Id, string Name, IReadOnlyList<string> Tables, int LeaseMs)
{
    /// <summary>Equal when every field is, the tables compared in order.</summary>
    public bool Equals(WorkerEntry? other) =>
        other is not null && Id == other.Id && Name == other.Name && LeaseMs == other.LeaseMs
        && Tables.SequenceEqual(other.Tables, StringComparer.Ordinal);

    /// <summary>A hash of the fields, consistent with <see cref="Equals(WorkerEntry?)"/>.</summary>
    public override int GetHashCode() => HashCode.Combine(Id, Name, LeaseMs, Tables.Count);
}
