
namespace ParamDb.Storage.Transfer;

/// <summary>
/// A copy of one range of one table in progress (<see cref="ParamStore.CopyRange"/>): hands out the range's
/// records in <see cref="RecordBatch"/>es, then, in the last batch, the range's vector clock as it was when the
/// copy began. Not thread-safe; dispose it when done or abandoned.
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
    private readonly int _range;
    private readonly (uint Worker, ulong Clock)[] _clocks;
    private readonly long _end;
    private readonly int _maxRecords;
    private long _next;
    private bool _done;
    private byte[] _buffer = [];
    private ulong[] _keys;
    private byte[] _payloads;
    private int[] _order;

    internal RangeCopy(ParamStore store, TableHandle table, ParamDb.Protocol.Ring ring, int range, ulong token, (uint, ulong)[] clocks, long begin, long end, int maxBytes)
    {
        _store = store;
        _table = table;
        _ring = ring;
        _range = range;
        Token = token;
        _clocks = clocks;
        _next = begin;
        _end = end;
        int payload = table._layout.PayloadBytes;
        _maxRecords = Math.Max(1, (maxBytes - RecordBatch.HeaderSize) / (8 + payload));
        // Exactly sized, once per copy: the scan fills keys up to their length and payloads in step.
        _keys = new ulong[_maxRecords];
        _payloads = new byte[_maxRecords * payload];
        _order = new int[_maxRecords];
    }

    /// <summary>The range: the ring token it ends at.</summary>
    public ulong Token { get; }

    /// <summary>Records handed out so far, versions of one row counted once per batch.</summary>
    public long Records { get; private set; }

    /// <summary>
    /// The next batch, valid until the next call; false once the last batch (the one with the clock) was handed out.
    /// </summary>
    /// <exception cref="InvalidOperationException">The log was compacted past the copy's position, or the store's ranges changed: start again.</exception>
    public bool TryReadNext(out ReadOnlyMemory<byte> batch)
    {
        ObjectDisposedException.ThrowIf(_keys.Length == 0, this);
        batch = default;
        if (_done) return false;
        int count = _store.ScanRange(_table, _ring, _range, ref _next, _end, _keys, _payloads);
        bool last = _next >= _end;
        int unique = SortNewestPerKey(count);
        int payload = _table._layout.PayloadBytes;
        int clocks = last ? _clocks.Length : 0;
        int size = (int)RecordBatch.SizeOf(payload, unique, clocks);
        if (_buffer.Length < size) _buffer = new byte[Math.Max(size, _buffer.Length * 2)];
        Span<byte> bytes = _buffer.AsSpan(0, size);
        RecordBatch.WriteHeader(bytes, _table.Id, Token, payload, unique, clocks);
        Span<byte> keyBytes = bytes.Slice(RecordBatch.HeaderSize, 8 * unique);
        Span<byte> payloads = bytes.Slice(RecordBatch.HeaderSize + 8 * unique, payload * unique);
        for (int i = 0; i < unique; i++)
        {
            int at = _order[i];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(keyBytes[(8 * i)..], _keys[at]);
            _payloads.AsSpan(at * payload, payload).CopyTo(payloads[(i * payload)..]);
        }
        for (int i = 0; i < clocks; i++) RecordBatch.WriteClock(bytes, payload, unique, i, _clocks[i].Worker, _clocks[i].Clock);
        Records += unique;
        _done = last;
        batch = _buffer.AsMemory(0, size);
        return true;
    }

    /// <summary>
    /// Orders the first <paramref name="count"/> scanned records by key in <c>_order</c>, keeping for each key the last
    /// one scanned (the newest version); returns how many keys remain.
    /// </summary>
    private int SortNewestPerKey(int count)
    {
        Span<int> order = _order.AsSpan(0, count);
        for (int i = 0; i < count; i++) order[i] = i;
        ulong[] keys = _keys;
        // Ties by scan position, so the newest version of a key comes last among its equals.
        order.Sort((a, b) => keys[a] != keys[b] ? keys[a].CompareTo(keys[b]) : a.CompareTo(b));
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
        _payloads = [];
        _order = [];
    }
}
