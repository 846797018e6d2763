using Microsoft.Extensions.Logging;
using ParamDb.Cluster.Commands;

namespace ParamDb.Cluster;

/// <summary>Every log line of the server manager, source-generated so a disabled level costs one check.</summary>
internal static partial class LogMessages
{
    [LoggerMessage(1, LogLevel.Information, "Server manager {NodeId} started on raft {RaftEndPoint} (cold start {ColdStart}, data {DataDirectory})")]
    public static partial void ManagerStarted(this ILogger logger, string nodeId, string raftEndPoint, bool coldStart, string dataDirectory);

    [LoggerMessage(2, LogLevel.Information, "Server manager {NodeId} stopped")]
    public static partial void ManagerStopped(this ILogger logger, string nodeId);

    [LoggerMessage(3, LogLevel.Information, "Node {NodeId}: leader is now {Leader}")]
    public static partial void LeaderChanged(this ILogger logger, string nodeId, string leader);

    [LoggerMessage(4, LogLevel.Debug, "Applied entry {Index}: {Command} → {Outcome} (id {Id}) {Detail}")]
    public static partial void CommandApplied(this ILogger logger, long index, CommandId command, CommandOutcome outcome, uint? id, string? detail);

    [LoggerMessage(5, LogLevel.Warning, "Log entry {Index} is not a command this build reads; applied as a no-op: {Reason}")]
    public static partial void UndecodableCommand(this ILogger logger, long index, string reason);

    [LoggerMessage(6, LogLevel.Information, "Restored metadata snapshot {File}: ring epoch {Epoch}, {Nodes} nodes, {Tables} tables, {Workers} workers")]
    public static partial void SnapshotRestored(this ILogger logger, string file, ulong epoch, int nodes, int tables, int workers);

    [LoggerMessage(7, LogLevel.Warning, "A StateChanged handler threw; the state was applied regardless")]
    public static partial void StateChangedHandlerFailed(this ILogger logger, Exception exception);

    [LoggerMessage(8, LogLevel.Information, "Raft member {MemberId} at {EndPoint}: {Action} → {Done}")]
    public static partial void MembershipChanged(this ILogger logger, string memberId, string endPoint, string action, bool done);

    [LoggerMessage(9, LogLevel.Debug, "Could not read the metadata of leader {Leader}")]
    public static partial void LeaderMetadataFailed(this ILogger logger, string leader, Exception exception);

    [LoggerMessage(10, LogLevel.Information, "Node {NodeId} is a member of cluster {ClusterId}: ring epoch {Epoch}, {Nodes} nodes")]
    public static partial void ClusterNodeStarted(this ILogger logger, string nodeId, Guid clusterId, ulong epoch, int nodes);

    [LoggerMessage(11, LogLevel.Information, "Ring epoch {Epoch}: {Nodes} nodes")]
    public static partial void RingEpochChanged(this ILogger logger, ulong epoch, int nodes);

    [LoggerMessage(12, LogLevel.Information, "Admitted node {NodeId} at {Http} (raft {Raft}) with {Tokens} tokens, ring epoch {Epoch}")]
    public static partial void NodeAdmitted(this ILogger logger, string nodeId, string http, string raft, int tokens, ulong epoch);

    [LoggerMessage(13, LogLevel.Information, "Mirrored table {Name} (id {Id}) into this node's store")]
    public static partial void MirrorAddedTable(this ILogger logger, string name, uint id);

    [LoggerMessage(14, LogLevel.Information, "Dropped table {Name} (id {Id}) from this node's store: the cluster no longer has it")]
    public static partial void MirrorDroppedTable(this ILogger logger, string name, uint id);

    [LoggerMessage(15, LogLevel.Warning, "Could not bring this node's store ranges to the ring's; the next ring change tries again")]
    public static partial void StoreRangesNotSet(this ILogger logger, Exception exception);

    [LoggerMessage(16, LogLevel.Warning, "Node {NodeId}: lease lapsed (no heartbeat granted by a leader for a lease); answering for no range until one is")]
    public static partial void LeaseLapsed(this ILogger logger, string nodeId);

    [LoggerMessage(17, LogLevel.Warning, "Declared node {NodeId} {State} (last heard {SilentMs:F0} ms ago)")]
    public static partial void NodeStateDeclared(this ILogger logger, string nodeId, ParamDb.Protocol.Cluster.NodeState state, double silentMs);

    [LoggerMessage(18, LogLevel.Debug, "Replication to {NodeId} of table {Table} deferred: {Reason}")]
    public static partial void ReplicationDeferred(this ILogger logger, string nodeId, string table, string reason);

    [LoggerMessage(19, LogLevel.Information, "Backup {NodeId} resynced: {Arcs} arcs sent whole")]
    public static partial void BackupResynced(this ILogger logger, string nodeId, int arcs);

    [LoggerMessage(23, LogLevel.Information, "Backup {NodeId} caught up: {Arcs} arcs sent whole beside the pushes, {Bytes} bytes in {Milliseconds} ms")]
    public static partial void BackupCaughtUp(this ILogger logger, string nodeId, int arcs, long bytes, long milliseconds);

    [LoggerMessage(24, LogLevel.Information, "Backup {NodeId} is joining and not caught up from here yet: {Progress}")]
    public static partial void BackupStillJoining(this ILogger logger, string nodeId, string progress);

    [LoggerMessage(20, LogLevel.Warning, "Backup {NodeId} refused a batch of table {Table} ({Status}): {Body}; sending again")]
    public static partial void ReplicationRefused(this ILogger logger, string nodeId, string table, int status, string body);

    [LoggerMessage(21, LogLevel.Warning, "Backup {NodeId} did not take a batch of table {Table}: {Reason}; sending again")]
    public static partial void ReplicationFailed(this ILogger logger, string nodeId, string table, string reason);

    [LoggerMessage(22, LogLevel.Error, "Node {NodeId}: the leader grants no lease: {Problem}")]
    public static partial void LeaseRefused(this ILogger logger, string nodeId, string problem);

    [LoggerMessage(25, LogLevel.Information, "Node {NodeId} leads the server manager ({SinceMs:F0} ms after its election); it counts every node as heard then")]
    public static partial void TookOver(this ILogger logger, string nodeId, double sinceMs);

    [LoggerMessage(26, LogLevel.Information, "Node {NodeId}: lease held again after {LapsedMs:F0} ms without one")]
    public static partial void LeaseRegained(this ILogger logger, string nodeId, double lapsedMs);

    [LoggerMessage(27, LogLevel.Information, "Counted node {NodeId} a caught-up stand-in of {Arcs} arcs (epoch {Epoch}): they have R copies again")]
    public static partial void StandInsCaughtUp(this ILogger logger, string nodeId, int arcs, ulong epoch);
}
