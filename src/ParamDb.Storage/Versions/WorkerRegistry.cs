using System.Text.Json;
using ParamDb.Protocol;

namespace ParamDb.Storage.Versions;

/// <summary>
/// Registered workers and their leases. Registrations persist as the system record
/// <see cref="RowKey.WorkersKey"/> beside the catalog, so they checkpoint with the clocks; leases live only in
/// memory, and every worker recovered on open starts a fresh lease (a worker that is still running keeps it with
/// its next heartbeat; one that is gone stops counting one lease later).
/// </summary>
/// <remarks>
/// Record format (UTF-8 JSON, only ever extended):
/// <code>{ "format": 1, "nextId": 4, "workers": [ { "id": 3, "name": "w0", "tables": ["emb"], "leaseMs": 10000 } ] }</code>
/// Liveness changes only in <see cref="Sweep"/> (expiry) and <see cref="TryTouch"/> (renewal), so waiters
/// see a worker leave the count at one definite moment. Lookups read an immutable snapshot, without a lock.
/// </remarks>
internal sealed class WorkerRegistry
{
    private const int Format = 1;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private volatile Worker[] _all = [];
    private uint _nextId = 1;

    /// <summary>Every registered worker, by ascending id.</summary>
    public Worker[] All => _all;

    /// <summary>Finds a worker; every stamped push asks, so it is a binary search (ids only grow, so <see cref="All"/> stays sorted).</summary>
    public bool TryGet(uint id, out Worker worker)
    {
        Worker[] current = _all;
        int i = IndexOf(current, id);
        worker = i >= 0 ? current[i] : null!;
        return i >= 0;
    }

    private static int IndexOf(Worker[] sorted, uint id)
    {
        int lo = 0, hi = sorted.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            uint at = sorted[mid].Id;
            if (at == id) return mid;
            if (at < id) lo = mid + 1;
            else hi = mid - 1;
        }
        return -1;
    }

    /// <summary>The lowest id never used: every id added must be at least this, so <see cref="All"/> stays sorted.</summary>
    public uint NextId => _nextId;

    /// <summary>Adds a worker under an id ≥ <see cref="NextId"/> (the caller holds the store's registry lock and persists the result).</summary>
    public Worker Add(uint id, string name, string[] tables, int leaseMs, long nowTicks)
    {
        if (id < _nextId) throw new ArgumentOutOfRangeException(nameof(id), id, $"Worker ids only grow; the next is {_nextId}.");
        var worker = new Worker(id, name, tables, leaseMs, nowTicks);
        _nextId = id + 1;
        _all = [.. _all, worker];
        return worker;
    }

    /// <summary>Removes a worker; false when absent.</summary>
    public bool Remove(uint id)
    {
        Worker[] current = _all;
        int i = IndexOf(current, id);
        if (i < 0) return false;
        _all = [.. current[..i], .. current[(i + 1)..]];
        return true;
    }

    /// <summary>Renews a worker's lease; false when it is not registered. Sets <paramref name="revived"/> when it had expired.</summary>
    public bool TryTouch(uint id, long nowTicks, out Worker worker, out bool revived)
    {
        revived = false;
        if (!TryGet(id, out worker)) return false;
        revived = worker.Renew(nowTicks);
        return true;
    }

    /// <summary>Marks expired leases; returns whether any worker stopped counting, and when the next lease ends.</summary>
    public bool Sweep(long nowTicks, out long nextExpiryTicks)
    {
        bool changed = false;
        nextExpiryTicks = long.MaxValue;
        foreach (Worker w in _all)
        {
            if (!w.Live) continue;
            long expires = w.ExpiresAtTicks;
            if (expires <= nowTicks) changed |= w.Expire(expires);
            else nextExpiryTicks = Math.Min(nextExpiryTicks, expires);
        }
        return changed;
    }

    /// <summary>
    /// The live workers whose lease has ended, without expiring them (a cluster's leader decides and commits the
    /// expiry); and when the next lease ends among the others.
    /// </summary>
    public List<uint> Due(long nowTicks, out long nextExpiryTicks)
    {
        var due = new List<uint>();
        nextExpiryTicks = long.MaxValue;
        foreach (Worker w in _all)
        {
            if (!w.Live) continue;
            long expires = w.ExpiresAtTicks;
            if (expires <= nowTicks) due.Add(w.Id);
            else nextExpiryTicks = Math.Min(nextExpiryTicks, expires);
        }
        return due;
    }

    public byte[] Serialize()
    {
        var doc = new RegistryDocument(Format, _nextId, [.. Array.ConvertAll(_all, w => new RegistryEntry(w.Id, w.Name, w.Tables, w.LeaseMs))]);
        return JsonSerializer.SerializeToUtf8Bytes(doc, Json);
    }

    /// <exception cref="InvalidDataException">The record is not a registry this version reads.</exception>
    public static WorkerRegistry Deserialize(ReadOnlySpan<byte> utf8, long nowTicks)
    {
        RegistryDocument? doc;
        try
        {
            doc = JsonSerializer.Deserialize<RegistryDocument>(utf8, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException("The stored worker registry is not valid JSON.", e);
        }
        if (doc is null || doc.Format != Format)
            throw new InvalidDataException($"Stored worker registry has format {doc?.Format}; this build reads format {Format}.");
        var registry = new WorkerRegistry { _nextId = doc.NextId };
        registry._all = [.. doc.Workers.ConvertAll(e => new Worker(e.Id, e.Name, e.Tables, e.LeaseMs, nowTicks))];
        return registry;
    }

    private sealed record RegistryDocument(int Format, uint NextId, List<RegistryEntry> Workers);

    private sealed record RegistryEntry(uint Id, string Name, string[] Tables, int LeaseMs);
}

/// <summary>A registered worker and its lease.</summary>
internal sealed class Worker
{
    private long _expiresAtTicks;
    private int _live = 1;

    public Worker(uint id, string name, string[] tables, int leaseMs, long nowTicks)
    {
        Id = id;
        Name = name;
        Tables = tables;
        LeaseMs = leaseMs;
        _expiresAtTicks = nowTicks + TimeSpan.TicksPerMillisecond * leaseMs;
    }

    public uint Id { get; }
    public string Name { get; }

    /// <summary>Tables the worker counts for; empty for all.</summary>
    public string[] Tables { get; }

    public int LeaseMs { get; }

    /// <summary>Whether the worker holds back consistent pulls; false from the sweep that saw its lease end.</summary>
    public bool Live => Volatile.Read(ref _live) != 0;

    public long ExpiresAtTicks => Interlocked.Read(ref _expiresAtTicks);

    /// <summary>True when the worker counts for <paramref name="table"/>.</summary>
    public bool CountsFor(string table)
    {
        if (Tables.Length == 0) return true;
        foreach (string t in Tables)
            if (string.Equals(t, table, StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>Extends the lease from now; true when the worker had expired and counts again.</summary>
    public bool Renew(long nowTicks)
    {
        lock (this)   // against Expire: a renewal must never be undone by a sweep that read the old expiry
        {
            Interlocked.Exchange(ref _expiresAtTicks, nowTicks + TimeSpan.TicksPerMillisecond * LeaseMs);
            return Interlocked.Exchange(ref _live, 1) == 0;
        }
    }

    /// <summary>Expires the lease if it was not renewed since <paramref name="seenExpiry"/> was read.</summary>
    public bool Expire(long seenExpiry)
    {
        lock (this)
        {
            if (Interlocked.Read(ref _expiresAtTicks) != seenExpiry) return false;
            return Interlocked.Exchange(ref _live, 0) == 1;
        }
    }

    public WorkerState ToState(long nowTicks)
    {
        long left = Math.Max(0, ExpiresAtTicks - nowTicks);
        bool isLive = Live;
        return new WorkerState(Id, Name, Tables, LeaseMs, isLive, isLive ? TimeSpan.FromTicks(left) : TimeSpan.Zero);
    }
}
