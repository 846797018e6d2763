using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ParamDb.Cluster.Membership;

/// <summary>
/// Who this node is in its cluster, kept in <c>DATA/cluster.json</c> from its first start on: the cluster id, the
/// node id, and the ring tokens it was given. A restart reads it and rejoins with no flags; its store's ranges are
/// these tokens, so its rows and clocks stay where they were.
/// </summary>
/// <remarks>
/// Format (UTF-8 JSON, only ever extended): <c>{"format":1,"clusterId":"…","nodeId":"n1","replicas":2,"vnodes":64,
/// "tokens":["123",…]}</c>, tokens as decimal strings (JSON numbers lose u64 precision in many readers). Written
/// to a temporary file and renamed, so a crash leaves the old file or the new one, never half of one.
/// </remarks>
/// <param name="ClusterId">The cluster the data folder belongs to.</param>
/// <param name="NodeId">This node's id.</param>
/// <param name="Replicas">R, copies of each range (fixed at init).</param>
/// <param name="VirtualNodes">V, tokens per node (fixed at init).</param>
/// <param name="Tokens">This node's tokens, ascending.</param>
public sealed record NodeIdentity(Guid ClusterId, string NodeId, int Replicas, int VirtualNodes, ulong[] Tokens)
{
    /// <summary>The file's name inside the data folder.</summary>
    public const string FileName = "cluster.json";

    private const int Format = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The identity in <paramref name="dataDirectory"/>, or null when the folder belongs to no cluster.</summary>
    /// <exception cref="InvalidDataException">The file exists but is not an identity this build reads.</exception>
    public static NodeIdentity? Load(string dataDirectory)
    {
        string path = Path.Combine(dataDirectory, FileName);
        if (!File.Exists(path)) return null;
        Document? doc;
        try
        {
            doc = JsonSerializer.Deserialize<Document>(File.ReadAllBytes(path), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not valid JSON ({e.Message}); it says which cluster this data folder belongs to. Restore it, or move the folder aside to start a new node.", e);
        }
        if (doc is null || doc.Format != Format || doc.NodeId is null || doc.Tokens is null)
            throw new InvalidDataException($"{path} is not a cluster identity this build reads (format {doc?.Format}; this build reads {Format}).");
        var tokens = new ulong[doc.Tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!ulong.TryParse(doc.Tokens[i], NumberStyles.None, CultureInfo.InvariantCulture, out tokens[i]))
                throw new InvalidDataException($"{path}: token {i} ('{doc.Tokens[i]}') is not a u64.");
        }
        return new NodeIdentity(doc.ClusterId, doc.NodeId, doc.Replicas, doc.VirtualNodes, tokens);
    }

    /// <summary>Writes the identity into <paramref name="dataDirectory"/>, replacing any older one atomically.</summary>
    public void Save(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        string path = Path.Combine(dataDirectory, FileName), temporary = path + ".tmp";
        string[] tokens = Array.ConvertAll(Tokens, t => t.ToString(CultureInfo.InvariantCulture));
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, new Document(Format, ClusterId, NodeId, Replicas, VirtualNodes, tokens), Json);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Equal when every field is, the tokens element by element.</summary>
    public bool Equals(NodeIdentity? other) =>
        other is not null && ClusterId == other.ClusterId && NodeId == other.NodeId && Replicas == other.Replicas
        && VirtualNodes == other.VirtualNodes && Tokens.AsSpan().SequenceEqual(other.Tokens);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(ClusterId, NodeId, Tokens.Length);

    private sealed record Document(
        [property: JsonPropertyName("format")] int Format,
        [property: JsonPropertyName("clusterId")] Guid ClusterId,
        [property: JsonPropertyName("nodeId")] string? NodeId,
        [property: JsonPropertyName("replicas")] int Replicas,
        [property: JsonPropertyName("vnodes")] int VirtualNodes,
        [property: JsonPropertyName("tokens")] string[]? Tokens);
}
