using ParamDb.Cluster.Wire;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Commands;

/// <summary>Turns commands into log-entry bytes and back (layouts on each command type).</summary>
public static class CommandCodec
{
    /// <summary>Longest command this codec accepts, in bytes (a schema is a few hundred; names are short).</summary>
    public const int MaxCommandBytes = 1 << 20;

    /// <summary>The command's bytes: <c>u16 id | u8 version | body</c>.</summary>
    public static byte[] Encode(ClusterCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var writer = new WireWriter();
        writer.WriteU16((ushort)command.Id);
        writer.WriteU8(command.Version);
        command.WriteBody(writer);
        if (writer.Length > MaxCommandBytes)
            throw new ArgumentException($"{command.Id} encodes to {writer.Length} bytes; at most {MaxCommandBytes} are allowed.");
        return writer.ToArray();
    }

    /// <summary>
    /// Reads one command. Throws <see cref="MetadataFormatException"/> for an unknown command id or version,
    /// truncated input, trailing bytes or invalid UTF-8.
    /// </summary>
    public static ClusterCommand Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > MaxCommandBytes)
            throw new MetadataFormatException($"Command of {bytes.Length} bytes exceeds the {MaxCommandBytes}-byte limit.");
        var reader = new WireReader(bytes, "Command header");
        ushort raw = reader.ReadU16();
        var id = (CommandId)raw;
        if (!Enum.IsDefined(id))
            throw new MetadataFormatException($"Unknown command id {raw} (0x{raw:x4}); this build knows 1…{(ushort)CommandId.MarkStandIns}.");
        reader = reader.Rename($"Command {id}");
        byte version = reader.ReadU8();
        if (version != 1)
            throw new MetadataFormatException($"Command {id} has body version {version}; this build reads version 1.");
        ClusterCommand command = id switch
        {
            CommandId.InitCluster => InitCluster.ReadBody(ref reader),
            CommandId.AddNode => AddNode.ReadBody(ref reader),
            CommandId.SetNodeState => SetNodeState.ReadBody(ref reader),
            CommandId.RemoveNode => RemoveNode.ReadBody(ref reader),
            CommandId.CreateTable => CreateTable.ReadBody(ref reader),
            CommandId.DeleteTable => DeleteTable.ReadBody(ref reader),
            CommandId.RegisterWorker => RegisterWorker.ReadBody(ref reader),
            CommandId.RemoveWorker => RemoveWorker.ReadBody(ref reader),
            CommandId.MarkStandIns => MarkStandIns.ReadBody(ref reader),
            _ => throw new MetadataFormatException($"Unknown command id {raw}."),
        };
        reader.EnsureEnd();
        return command;
    }
}
