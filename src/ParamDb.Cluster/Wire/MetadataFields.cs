using System.Text.Json;
using ParamDb.Cluster.Metadata;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Wire;

/// <summary>
/// Layouts shared by commands and snapshots.
/// <code>
/// node   := str16 id | str16 http | str16 h2 | str16 raft | u8 state | u16 n | n × u64 token (ascending)
/// schema := u32 length | UTF-8 JSON of TableSchema (ProtocolJson: camelCase, nulls left out)
/// str16  := u16 length | UTF-8 bytes
/// </code>
/// </summary>
internal static class MetadataFields
{
    public static void WriteNode(this WireWriter writer, NodeInfo node)
    {
        writer.WriteString16(node.Id);
        writer.WriteString16(node.Http);
        writer.WriteString16(node.H2);
        writer.WriteString16(node.Raft);
        writer.WriteU8((byte)node.State);
        writer.WriteU16((ushort)node.Tokens.Length);
        foreach (ulong token in node.Tokens) writer.WriteU64(token);
    }

    public static NodeInfo ReadNode(ref WireReader reader)
    {
        string id = reader.ReadString16("node id");
        string http = reader.ReadString16("node http");
        string h2 = reader.ReadString16("node h2");
        string raft = reader.ReadString16("node raft");
        byte state = reader.ReadU8();
        if (!Enum.IsDefined((NodeState)state)) throw reader.Invalid($"node {id} has unknown state {state}");
        var tokens = new ulong[reader.ReadU16()];
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = reader.ReadU64();
            if (i > 0 && tokens[i] <= tokens[i - 1]) throw reader.Invalid($"node {id} has tokens out of order");
        }
        return new NodeInfo(id, http, h2, raft, (NodeState)state, tokens);
    }

    public static void WriteSchema(this WireWriter writer, TableSchema schema) =>
        writer.WriteBytes32(JsonSerializer.SerializeToUtf8Bytes(schema, ProtocolJson.Default.TableSchema));

    public static TableSchema ReadSchema(ref WireReader reader)
    {
        var json = reader.ReadBytes32("schema JSON");
        try
        {
            return JsonSerializer.Deserialize(json, ProtocolJson.Default.TableSchema)
                   ?? throw reader.Invalid("schema JSON is null");
        }
        catch (JsonException e)
        {
            throw new MetadataFormatException($"Schema JSON before offset {reader.Position} does not parse: {e.Message}", e);
        }
    }

    public static void WriteStrings16(this WireWriter writer, IReadOnlyList<string> values)
    {
        if (values.Count > ushort.MaxValue) throw new ArgumentException($"{values.Count} strings do not fit a u16 count.");
        writer.WriteU16((ushort)values.Count);
        foreach (string value in values) writer.WriteString16(value);
    }

    public static string[] ReadStrings16(ref WireReader reader, string field)
    {
        int count = reader.ReadU16();
        var values = new string[count];
        for (int i = 0; i < count; i++) values[i] = reader.ReadString16(field);
        return values;
    }
}
