using System.Diagnostics;
using FASTER.core;
using ParamDb.Storage.Versions;

namespace ParamDb.Storage;

/// <summary>Log compaction: keeps the disk log within about twice the live data.</summary>
public sealed partial class ParamStore
{
    /// <summary>Garbage below which compaction is not worth a pass: 8 MiB, four log pages.</summary>
    private const long MinGarbageBytes = 8L << 20;

    /// <summary>Log addresses and the live bytes the compaction rule compares them with.</summary>
    public LogStats GetLogStats()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Catalog current = _catalog;
        long live = current.Serialize().Length + 64L;   // the catalog record, with its header
        foreach (TableHandle table in current.Sorted) live += table.Rows * table._layout.RecordBytes;
        return new LogStats(_store.Log.BeginAddress, _store.Log.HeadAddress, _store.Log.TailAddress, live);
    }

    /// <summary>
    /// Compacts the log when it is worth it, or always with <paramref name="force"/>. Runs on its own from every
    /// <see cref="CheckpointAsync"/> (the host checkpoints every 60 s), so a host needs no other loop.
    /// </summary>
    /// <remarks>
    /// <para>Rule: compact when garbage (log bytes − live bytes) exceeds both the live bytes (the log is over 2× the
    /// live data) and 8 MiB. Garbage comes from updates of rows no longer in the mutable 90 % of memory: each copies
    /// its row to the tail and leaves the old copy behind; rows of deleted tables are garbage too.</para>
    /// <para>It compacts everything below the mutable region (<c>SafeReadOnlyAddress</c>): live rows there are
    /// copied to the tail, rows of deleted tables are dropped, and the begin address moves up. The files below it
    /// are deleted by the next checkpoint. <see cref="CompactionType.Lookup"/>, not Scan: Scan first copies every
    /// live record of the range into a temporary in-memory store, which for a table larger than the memory budget
    /// would need the whole table in RAM; Lookup checks each record against the index instead.</para>
    /// </remarks>
    /// <returns>Whether a compaction ran.</returns>
    public bool CompactLog(bool force = false)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _maintenance.Wait();
        try
        {
            return CompactIfWorthIt(force);
        }
        finally
        {
            _maintenance.Release();
        }
    }

    /// <summary>The compaction itself; the caller holds <see cref="_maintenance"/>.</summary>
    private bool CompactIfWorthIt(bool force)
    {
        LogStats before = GetLogStats();
        long garbage = before.LogBytes - before.LiveBytes;
        if (!force && (garbage <= before.LiveBytes || garbage <= MinGarbageBytes)) return false;
        long until = _store.Log.SafeReadOnlyAddress;
        if (until <= before.BeginAddress) return false;

        var clock = Stopwatch.StartNew();
        RowSession session = _sessions.Rent();
        try
        {
            session.Compact(until, CompactionType.Lookup, new DeletedTableFilter(_catalog, _registry.All));
        }
        finally
        {
            _sessions.Return(session);
        }
        _compactedSinceCheckpoint = true;
        LogStats after = GetLogStats();
        _logger.Compacted(before.LogBytes >> 20, after.LogBytes >> 20, after.LiveBytes >> 20, clock.ElapsedMilliseconds);
        return true;
    }

    /// <summary>
    /// Tells compaction which records to drop: rows and clocks whose table id is not in the catalog, and clocks of
    /// workers no longer registered.
    /// </summary>
    private readonly struct DeletedTableFilter(Catalog catalog, Worker[] workers) : ICompactionFunctions<RowKey, SpanByte>
    {
        public bool IsDeleted(ref RowKey key, ref SpanByte value)
        {
            if (!catalog.IsLive(key.Table)) return true;
            if (key.Kind != RowKind.Clock) return false;
            foreach (Worker w in workers)
                if (w.Id == key.Key) return false;
            return true;
        }
    }
}
