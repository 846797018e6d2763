using System.Text.Json.Serialization;

namespace ParamDb.Protocol.Cluster;

/// <summary>
/// Where a node is in its life in the group, as <c>GET /v1/cluster</c> reports it: the lowercase strings
/// <c>joining</c>, <c>up</c>, <c>down</c>, <c>leaving</c>, so clients in other languages compare plain strings.
/// In the server manager's log it is one byte of these values, never renumbered.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<NodeState>))]
public enum NodeState : byte
{
    /// <summary>In the ring, still receiving its ranges from their previous holders.</summary>
    [JsonStringEnumMemberName("joining")]
    Joining = 0,

    /// <summary>Serving the ranges it holds.</summary>
    [JsonStringEnumMemberName("up")]
    Up = 1,

    /// <summary>Not answering; its ranges are served by their backups until it returns or is removed.</summary>
    [JsonStringEnumMemberName("down")]
    Down = 2,

    /// <summary>Handing its ranges to the nodes that take them over, then leaving the ring.</summary>
    [JsonStringEnumMemberName("leaving")]
    Leaving = 3,
}
