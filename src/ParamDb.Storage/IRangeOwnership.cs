using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// The ranges of the ring this node owns (docs/cluster.md): a single node owns every range; in a cluster, the
/// arcs that end at its tokens, in the current ring epoch. The store keeps one vector clock per owned range.
/// </summary>
/// <remarks>
/// Concurrency: <see cref="Owns"/> is called per block on the data path and reads an immutable snapshot. When
/// the ring changes, implementations swap the snapshot and raise <see cref="Changed"/>. Ranges move between nodes
/// with their rows and clocks by whole-record transfer (<see cref="Transfer.IRangeTransfer"/>); until replication
/// and migration use it, a cluster's ownership changes only when nodes join.
/// </remarks>
public interface IRangeOwnership
{
    /// <summary>The ring epoch the ownership is of; 0 on a single node.</summary>
    ulong Epoch { get; }

    /// <summary>This node's own ranges: its tokens, one vector clock per range.</summary>
    Ring Ranges { get; }

    /// <summary>Whether this node owns the position of <paramref name="key"/> in the table whose name hashes to <paramref name="tableHash"/> (<see cref="Ring.NameHash"/>).</summary>
    bool Owns(ulong tableHash, ulong key);

    /// <summary>Raised after the ownership changed (a new epoch).</summary>
    event Action? Changed;
}
