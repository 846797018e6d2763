namespace ParamDb.Storage.Transfer;

/// <summary>
/// Told of every push as the store applies it (docs/replication.md): what a primary's replicator listens to, to
/// learn which rows to ship to its backups. Called inside the push's own section: for a clocked push under the
/// worker's clock lock, after the rows and the clock have changed, so a reader that holds the table's clock locks
/// (<see cref="ParamStore.HoldClockedPushes"/>) has been told of every push the clocks it reads count. Not called for
/// pushes replayed from the log, retries skipped whole, or transferred records.
/// </summary>
/// <remarks>Must be quick and must not call back into the store: the push waits, holding its locks.</remarks>
public interface IPushTap
{
    /// <summary>A push of explicit keys (ascending; empty for a clocked push with no rows here) was applied.</summary>
    void Applied(TableHandle table, ReadOnlySpan<ulong> keys, bool clocked);

    /// <summary>A push of the keys <paramref name="first"/> … <paramref name="first"/> + <paramref name="count"/> − 1 was applied.</summary>
    void AppliedRange(TableHandle table, ulong first, int count, bool clocked);
}
