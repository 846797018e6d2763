using System.Text.Json;
using System.Text.Json.Serialization;
using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// The table catalog: an immutable snapshot swapped atomically on create/delete, so lookups on the hot path take
/// no lock. It persists as the value of the single record <see cref="RowKey.CatalogKey"/> (table id 0) in the same
/// FasterKV as the rows, so a checkpoint captures schemas and rows at one consistent point.
/// </summary>
/// <remarks>
/// Record format (UTF-8 JSON, only ever extended):
/// <code>{ "format": 1, "nextId": 3, "tables": [ { "id": 1, "name": "emb", "schema": { "dim": 64, … } } ] }</code>
/// Only live tables are listed. A row whose table id is not listed belongs to a deleted table: it is invisible
/// (ids are never reused, <c>nextId</c> only grows) and log compaction drops it.
/// </remarks>
internal sealed class Catalog
{
    private const int Format = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly Dictionary<string, TableHandle> _byName;
    private readonly Dictionary<uint, TableHandle> _byId;

    private Catalog(Dictionary<string, TableHandle> byName, uint nextId)
    {
        _byName = byName;
        NextId = nextId;
        _byId = byName.Values.ToDictionary(t => t.Id);
        Sorted = Array.AsReadOnly(byName.Values.OrderBy(t => t.Name, StringComparer.Ordinal).ToArray());
    }

    public static Catalog Empty { get; } = new(new Dictionary<string, TableHandle>(StringComparer.Ordinal), 1);

    /// <summary>The id the next created table gets; ids start at 1 (0 is the catalog record).</summary>
    public uint NextId { get; }

    /// <summary>Live tables sorted by name (ordinal).</summary>
    public IReadOnlyList<TableHandle> Sorted { get; }

    public bool TryGet(string name, out TableHandle? table) => _byName.TryGetValue(name, out table);

    public bool TryGet(uint id, out TableHandle? table) => _byId.TryGetValue(id, out table);

    /// <summary>Whether rows with this table id are live (the catalog record itself counts as live).</summary>
    public bool IsLive(uint tableId) => tableId == 0 || _byId.ContainsKey(tableId);

    public Catalog WithTable(TableHandle table) =>
        new(new Dictionary<string, TableHandle>(_byName, StringComparer.Ordinal) { [table.Name] = table }, Math.Max(NextId, table.Id + 1));

    public Catalog WithoutTable(string name)
    {
        var tables = new Dictionary<string, TableHandle>(_byName, StringComparer.Ordinal);
        tables.Remove(name);
        return new(tables, NextId);
    }

    /// <summary>
    /// The tables of <paramref name="logged"/> (a catalog replayed from the write-ahead log), keeping this
    /// catalog's handle, with its row count and clocks, for every table id both hold.
    /// </summary>
    public Catalog Adopt(Catalog logged)
    {
        var tables = new Dictionary<string, TableHandle>(StringComparer.Ordinal);
        foreach (TableHandle table in logged.Sorted)
            tables.Add(table.Name, _byId.TryGetValue(table.Id, out TableHandle? kept) && kept.Name == table.Name ? kept : table);
        return new(tables, Math.Max(NextId, logged.NextId));
    }

    /// <summary>The same tables with <see cref="NextId"/> raised past ids seen in rows (see <see cref="ParamStore"/> recovery).</summary>
    public Catalog WithNextId(uint nextId) => nextId <= NextId ? this : new(_byName, nextId);

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(
        new CatalogDocument(Format, NextId, Sorted.Select(t => new CatalogEntry(t.Id, t.Name, t.Schema)).ToList()), Json);

    /// <exception cref="InvalidDataException">The record is not a catalog this version understands.</exception>
    /// <param name="utf8">The stored record.</param>
    /// <param name="ranges">The store's ranges, for each table's vector clocks.</param>
    public static Catalog Deserialize(ReadOnlySpan<byte> utf8, Versions.RangeShape ranges)
    {
        CatalogDocument? doc;
        try
        {
            doc = JsonSerializer.Deserialize<CatalogDocument>(utf8, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException("The stored table catalog is not valid JSON.", e);
        }
        if (doc is null || doc.Format != Format)
            throw new InvalidDataException($"Stored table catalog has format {doc?.Format}; this build reads format {Format}.");
        var tables = new Dictionary<string, TableHandle>(StringComparer.Ordinal);
        foreach (CatalogEntry entry in doc.Tables)
            tables.Add(entry.Name, new TableHandle(entry.Name, entry.Id, entry.Schema, ranges));
        return new(tables, doc.NextId);
    }

    private sealed record CatalogDocument(int Format, uint NextId, List<CatalogEntry> Tables);

    private sealed record CatalogEntry(uint Id, string Name, TableSchema Schema);
}
