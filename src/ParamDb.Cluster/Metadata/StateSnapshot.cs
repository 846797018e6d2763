using System.Collections.Immutable;
using ParamDb.Cluster.Wire;

namespace ParamDb.Cluster.Metadata;

/// <summary>
/// The whole <see cref="ClusterState"/> as one file, written by the state machine when it persists and sent by
/// a leader to a member too far behind. All integers little-endian; maps in key order, so equal states give
/// equal bytes.
/// <code>
/// "PDBM" | u16 version = 3
/// clusterId: 16 bytes | R: u16 | V: u16 | ringEpoch: u64 | nextTableId: u32 | nextWorkerId: u32
/// u32 count | node*        node   := str16 id | str16 http | str16 h2 | str16 raft | u8 state
/// u32 count | table*       table  := str16 name | u32 id | u32 length | UTF-8 JSON schema
/// u32 count | worker*      worker := u32 id | str16 name | u16 count | str16 table* | u32 leaseMs
/// u32 count | leftUp*      leftUp := str16 node id | u64 epoch     (version 2: NodeInfo.LeftUpAt where not 0)
/// u32 count | standIn*     standIn := u64 token | str16 node id    (version 3: ClusterState.StandIns, in order)
/// </code>
/// A later version appends sections after the last and bumps the version; this build reads versions 1 (no
/// leftUp section: every LeftUpAt 0), 2 (no stand-ins) and 3, and refuses later ones rather than drop what it
/// cannot read.
/// </summary>
public static class StateSnapshot
{
    /// <summary>The version this build writes and the highest it reads.</summary>
    public const ushort Version = 3;

    private static ReadOnlySpan<byte> Magic => "PDBM"u8;

    /// <summary>The snapshot bytes of <paramref name="state"/>.</summary>
    public static byte[] Encode(ClusterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var writer = new WireWriter(1024);
        writer.WriteRaw(Magic);
        writer.WriteU16(Version);
        writer.WriteGuid(state.ClusterId);
        writer.WriteU16(checked((ushort)state.Replicas));
        writer.WriteU16(checked((ushort)state.VirtualNodes));
        writer.WriteU64(state.RingEpoch);
        writer.WriteU32(state.NextTableId);
        writer.WriteU32(state.NextWorkerId);

        writer.WriteU32((uint)state.Nodes.Count);
        foreach (var node in state.Nodes.Values) writer.WriteNode(node);

        writer.WriteU32((uint)state.Tables.Count);
        foreach (var table in state.Tables.Values)
        {
            writer.WriteString16(table.Name);
            writer.WriteU32(table.Id);
            writer.WriteSchema(table.Schema);
        }

        writer.WriteU32((uint)state.Workers.Count);
        foreach (var worker in state.Workers.Values)
        {
            writer.WriteU32(worker.Id);
            writer.WriteString16(worker.Name);
            writer.WriteStrings16(worker.Tables);
            writer.WriteU32((uint)worker.LeaseMs);
        }

        int leftUp = 0;
        foreach (var node in state.Nodes.Values) if (node.LeftUpAt != 0) leftUp++;
        writer.WriteU32((uint)leftUp);
        foreach (var node in state.Nodes.Values)
        {
            if (node.LeftUpAt == 0) continue;
            writer.WriteString16(node.Id);
            writer.WriteU64(node.LeftUpAt);
        }

        writer.WriteU32((uint)state.StandIns.Count);
        foreach (StandIn standIn in state.StandIns)
        {
            writer.WriteU64(standIn.Token);
            writer.WriteString16(standIn.Node);
        }
        return writer.ToArray();
    }

    /// <summary>
    /// Reads a snapshot. Throws <see cref="MetadataFormatException"/> on a wrong magic, an unknown version,
    /// truncation, trailing bytes or a duplicate key.
    /// </summary>
    public static ClusterState Decode(ReadOnlySpan<byte> bytes)
    {
        var reader = new WireReader(bytes, "Metadata snapshot");
        if (!reader.ReadRaw(Magic.Length, "magic").SequenceEqual(Magic))
            throw new MetadataFormatException("Metadata snapshot does not start with \"PDBM\".");
        ushort version = reader.ReadU16();
        if (version is 0 or > Version)
            throw new MetadataFormatException($"Metadata snapshot version {version}; this build reads versions 1 to {Version}.");

        var clusterId = reader.ReadGuid();
        int replicas = reader.ReadU16(), virtualNodes = reader.ReadU16();
        ulong epoch = reader.ReadU64();
        uint nextTable = reader.ReadU32(), nextWorker = reader.ReadU32();

        var nodes = ImmutableSortedDictionary.CreateBuilder<string, NodeInfo>(StringComparer.Ordinal);
        for (uint i = 0, n = reader.ReadU32(); i < n; i++)
        {
            var node = MetadataFields.ReadNode(ref reader);
            if (!nodes.TryAdd(node.Id, node)) throw reader.Invalid($"node {node.Id} appears twice");
        }

        var tables = ImmutableSortedDictionary.CreateBuilder<string, TableEntry>(StringComparer.Ordinal);
        for (uint i = 0, n = reader.ReadU32(); i < n; i++)
        {
            string name = reader.ReadString16("table name");
            uint id = reader.ReadU32();
            var schema = MetadataFields.ReadSchema(ref reader);
            if (!tables.TryAdd(name, new TableEntry(name, id, schema))) throw reader.Invalid($"table {name} appears twice");
        }

        var workers = ImmutableSortedDictionary.CreateBuilder<uint, WorkerEntry>();
        for (uint i = 0, n = reader.ReadU32(); i < n; i++)
        {
            uint id = reader.ReadU32();
            string name = reader.ReadString16("worker name");
            string[] names = MetadataFields.ReadStrings16(ref reader, "worker table");
            uint lease = reader.ReadU32();
            if (lease > int.MaxValue) throw reader.Invalid($"worker {id} has lease {lease} ms");
            if (!workers.TryAdd(id, new WorkerEntry(id, name, names, (int)lease))) throw reader.Invalid($"worker {id} appears twice");
        }

        if (version >= 2)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (uint i = 0, n = reader.ReadU32(); i < n; i++)
            {
                string id = reader.ReadString16("node id");
                ulong leftUpAt = reader.ReadU64();
                if (!nodes.TryGetValue(id, out NodeInfo? node)) throw reader.Invalid($"left-up epoch of unknown node {id}");
                if (!seen.Add(id)) throw reader.Invalid($"left-up epoch of node {id} appears twice");
                nodes[id] = node with { LeftUpAt = leftUpAt };
            }
        }
        var standIns = ImmutableSortedSet.CreateBuilder<StandIn>();
        if (version >= 3)
        {
            for (uint i = 0, n = reader.ReadU32(); i < n; i++)
            {
                var standIn = new StandIn(reader.ReadU64(), reader.ReadString16("stand-in node id"));
                if (!nodes.ContainsKey(standIn.Node)) throw reader.Invalid($"stand-in of unknown node {standIn.Node}");
                if (!standIns.Add(standIn)) throw reader.Invalid($"stand-in {standIn.Node} of token {standIn.Token} appears twice");
            }
        }
        reader.EnsureEnd();

        return new ClusterState
        {
            ClusterId = clusterId,
            Replicas = replicas,
            VirtualNodes = virtualNodes,
            RingEpoch = epoch,
            NextTableId = nextTable,
            NextWorkerId = nextWorker,
            Nodes = nodes.ToImmutable(),
            Tables = tables.ToImmutable(),
            Workers = workers.ToImmutable(),
            StandIns = standIns.ToImmutable(),
        };
    }
}
