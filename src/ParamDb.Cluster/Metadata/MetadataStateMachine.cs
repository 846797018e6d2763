using System.Buffers;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ParamDb.Cluster.Commands;
using ParamDb.Cluster.Raft;
using ParamDb.Cluster.Wire;

namespace ParamDb.Cluster.Metadata;

/// <summary>
/// The Raft state machine of the server manager: applies <see cref="ClusterCommand"/>s to an immutable
/// <see cref="ClusterState"/> and swaps it whole. DotNext's <see cref="SimpleStateMachine"/> persists it as a
/// <see cref="StateSnapshot"/> file in its directory after every entry that changed it (metadata is small and
/// changes rarely), so a restart restores the newest snapshot and replays only the log after it.
/// <para>
/// Applying never throws for bad bytes: an entry that does not decode applies as a no-op with outcome
/// <see cref="CommandOutcome.Invalid"/> on every member alike (an exception would stop DotNext's applier for
/// good). Empty entries (the leader's no-ops, membership entries) are skipped.
/// </para>
/// </summary>
public sealed class MetadataStateMachine : SimpleStateMachine
{
    private readonly ILogger _logger;
    private ClusterState _state = ClusterState.Empty;

    /// <summary>A state machine keeping its snapshots in <paramref name="location"/> (created if missing).</summary>
    public MetadataStateMachine(DirectoryInfo location, ILogger? logger = null) : base(location)
    {
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The current state: the last one applied or restored.</summary>
    public ClusterState State => Volatile.Read(ref _state);

    /// <summary>
    /// Raised with the new state after a command changed it or a snapshot replaced it, on DotNext's applier:
    /// handlers must be quick and must not wait for the cluster. Exceptions are logged and dropped.
    /// </summary>
    public event Action<ClusterState>? StateChanged;

    /// <inheritdoc/>
    protected override ValueTask<bool> ApplyAsync(LogEntry entry, CancellationToken token)
    {
        if (!entry.TryGetPayload(out var payload) || payload.IsEmpty) return ValueTask.FromResult(false);
        byte[]? copy = payload.IsSingleSegment ? null : payload.ToArray();
        var bytes = copy is null ? payload.FirstSpan : copy;
        var state = State;
        ClusterState next;
        CommandResult result;
        ClusterCommand? command = null;
        try
        {
            command = CommandCodec.Decode(bytes);
            next = command.Apply(state, out result);
        }
        catch (MetadataFormatException e)
        {
            _logger.UndecodableCommand(entry.Index, e.Message);
            next = state;
            result = new CommandResult(CommandOutcome.Invalid, Detail: e.Message) { RingEpoch = state.RingEpoch };
        }
        result = result with { LogIndex = entry.Index };
        (entry.Context as ProposalContext)?.TryComplete(bytes, result);

        if (command is not null) _logger.CommandApplied(entry.Index, command.Id, result.Outcome, result.Id, result.Detail);
        if (ReferenceEquals(next, state)) return ValueTask.FromResult(false);
        Publish(next);
        return ValueTask.FromResult(true);
    }

    /// <inheritdoc/>
    protected override ValueTask PersistAsync(IAsyncBinaryWriter writer, CancellationToken token) =>
        writer.Invoke(StateSnapshot.Encode(State), token);

    /// <inheritdoc/>
    protected override async ValueTask RestoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        byte[] bytes = await File.ReadAllBytesAsync(snapshotFile.FullName, token).ConfigureAwait(false);
        var state = StateSnapshot.Decode(bytes);
        _logger.SnapshotRestored(snapshotFile.Name, state.RingEpoch, state.Nodes.Count, state.Tables.Count, state.Workers.Count);
        Publish(state);
    }

    private void Publish(ClusterState state)
    {
        Volatile.Write(ref _state, state);
        var handlers = StateChanged;
        if (handlers is null) return;
        foreach (Action<ClusterState> handler in handlers.GetInvocationList())
        {
            try
            {
                handler(state);
            }
            catch (Exception e)
            {
                _logger.StateChangedHandlerFailed(e);
            }
        }
    }
}
