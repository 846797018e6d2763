
namespace ParamDb.Storage.Transfer;

/// <summary>
/// A copy of one or several ranges of one table in progress (<see cref="ParamStore.CopyRange"/>,
/// <see cref="ParamStore.CopyRanges"/>): hands out each range's records in <see cref="RecordBatch"/>es, one log
/// pass for all of them, and in each range's last batch the range's vector clock as it was when the copy began.
/// Not thread-safe; dispose it when done or abandoned.
/// </summary>
/// <remarks>
/// <para>What it holds: every row of the range that existed when the copy began, each with a value at least as new as
/// it was then. The clock was read before the copy's end of log was fixed, so every push the clock counts is in
/// the records; a receiver that applies every batch in order, the last one included, can skip a retried push the
/// clock counts without losing it. Pushes after the copy began may or may not be in it: the replication stream that
/// follows a copy carries them.</para>
/// <para>It reads the log from its start, so a row that was moved by an update appears once per version, in log
/// order; a batch keeps each key's newest version it met, and a later batch may carry a newer one: apply batches in
/// order. Rows are never deleted one by one except by <see cref="ParamStore.DropRange"/>, and a range is copied
/// only from a node that holds all of it, so every deleted version has a newer live one.</para>
/// <para>Between batches the log may be compacted, which moves live records past the copy's end, or the store's
/// ranges may change (<see cref="ParamStore.SetRanges"/>): the next batch then throws
/// <see cref="InvalidOperationException"/> and the copy must start again.</para>
/// </remarks>
public sealed class RangeCopy : IDisposable
{
    private readonly ParamStore _store;
    private readonly TableHandle _table;
    private readonly ParamDb.Protocol.Ring _ring;
    private readonly int[] _ranges;                          // ring indexes of the ranges copied, ascending
    private readonly (uint Worker, ulong Clock)[][] _clocks;   // per copied range, as read when the copy began
    private readonly bool[] _wanted;                          // by ring index
    private readonly bool[] _closed;                          // per copied range: its last batch (with the clock) is out
    private readonly long _end;
    private readonly int _maxRecords;
    private long _next;
    private bool _scanned;
    private byte[] _buffer = [];
    private ulong[] _keys;
    private int[] _rangeOf;
    private byte[] _payloads;
    private int[] _order;
    private readonly List<(int Start, int Count, int Range, bool Last)> _groups = [];   // batches of the chunk scanned last
    private int _nextGroup;
    private int _nextClosing;                                 // after the scan: the copied range to close next

    internal RangeCopy(ParamStore store, TableHandle table, ParamDb.Protocol.Ring ring, int[] ranges, (uint, ulong)[][] clocks, long begin, long end, int maxBytes)
    {
        _store = store;
        _table = table;
        _ring = ring;
        _ranges = ranges;
        _clocks = clocks;
        _wanted = new bool[ring.Count];
        foreach (int r in ranges) _wanted[r] = true;
        _closed = new bool[ranges.Length];
        _next = begin;
        _end = end;
        int payload = table._layout.PayloadBytes;
        _maxRecords = Math.Max(1, (maxBytes - RecordBatch.HeaderSize) / (8 + payload));
        // Exactly sized, once per copy: the scan fills keys up to their length and payloads in step.
        _keys = new ulong[_maxRecords];
        _rangeOf = new int[_maxRecords];
        _payloads = new byte[_maxRecords * payload];
        _order = new int[_maxRecords];
    }

    /// <summary>The first range copied: the ring token it ends at.</summary>
    public ulong Token => _ring.Tokens[_ranges[0]];

    /// <summary>Records handed out so far, versions of one row counted once per batch.</summary>
    public long Records { get; private set; }

    /// <summary>
    /// The next batch, valid until the next call; false once every range's last batch (the one with its clock) was
    /// handed out.
    /// </summary>
    /// <exception cref="InvalidOperationException">The log was compacted past the copy's position, or the store's ranges changed: start again.</exception>
    public bool TryReadNext(out ReadOnlyMemory<byte> batch)
    {
        ObjectDisposedException.ThrowIf(_keys.Length == 0, this);
        while (true)
        {
            if (_nextGroup < _groups.Count)
            {
                var (start, count, range, last) = _groups[_nextGroup++];
                batch = Write(start, count, range, last);
                return true;
            }
            if (!_scanned)
            {
                ScanChunk();
                continue;
            }
            // Ranges whose records all came in earlier chunks, or that have none: a batch of their clock alone.
            while (_nextClosing < _ranges.Length && _closed[_nextClosing]) _nextClosing++;
            if (_nextClosing < _ranges.Length)
            {
                batch = Write(0, 0, _nextClosing++, last: true);
                return true;
            }
            batch = default;
            return false;
        }
    }

    /// <summary>Scans the next chunk of the log and groups its records into one batch per range, keys ascending.</summary>
    private void ScanChunk()
    {
        int count = _store.ScanRanges(_table, _ring, _wanted, ref _next, _end, _keys, _rangeOf, _payloads);
        _scanned = _next >= _end;
        int unique = SortNewestPerKey(count);
        _groups.Clear();
        _nextGroup = 0;
        for (int i = 0; i < unique;)
        {
            int range = _rangeOf[_order[i]], j = i;
            while (j < unique && _rangeOf[_order[j]] == range) j++;
            _groups.Add((i, j - i, Array.BinarySearch(_ranges, range), _scanned));
            i = j;
        }
    }

    /// <summary>Writes the batch of records <c>_order[start…start+count)</c> of copied range <paramref name="copied"/>, with its clock when it is the range's last.</summary>
    private ReadOnlyMemory<byte> Write(int start, int count, int copied, bool last)
    {
        int payload = _table._layout.PayloadBytes;
        ReadOnlySpan<(uint Worker, ulong Clock)> clocks = last ? _clocks[copied] : [];
        int size = (int)RecordBatch.SizeOf(payload, count, clocks.Length);
        if (_buffer.Length < size) _buffer = new byte[Math.Max(size, _buffer.Length * 2)];
        RecordBatch.Lay(_buffer.AsSpan(0, size), _table.Id, _ring.Tokens[_ranges[copied]], payload, count, clocks, out Span<byte> keyBytes, out Span<byte> payloads);
        for (int i = 0; i < count; i++)
        {
            int at = _order[start + i];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(keyBytes[(8 * i)..], _keys[at]);
            _payloads.AsSpan(at * payload, payload).CopyTo(payloads[(i * payload)..]);
        }
        Records += count;
        if (last) _closed[copied] = true;
        return _buffer.AsMemory(0, size);
    }

    /// <summary>
    /// Orders the first <paramref name="count"/> scanned records by range, then key, in <c>_order</c>, keeping for
    /// each key the last one scanned (the newest version); returns how many remain.
    /// </summary>
    private int SortNewestPerKey(int count)
    {
        Span<int> order = _order.AsSpan(0, count);
        for (int i = 0; i < count; i++) order[i] = i;
        ulong[] keys = _keys;
        int[] ranges = _rangeOf;
        // Ties by scan position, so the newest version of a key comes last among its equals.
        order.Sort((a, b) => ranges[a] != ranges[b] ? ranges[a].CompareTo(ranges[b]) : keys[a] != keys[b] ? keys[a].CompareTo(keys[b]) : a.CompareTo(b));
        int unique = 0;
        for (int i = 0; i < count; i++)
        {
            if (i + 1 < count && keys[order[i + 1]] == keys[order[i]]) continue;
            order[unique++] = order[i];
        }
        return unique;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _keys = [];
    }
}
