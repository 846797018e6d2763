using ParamDb.Cluster.Commands;

namespace ParamDb.Cluster.Raft;

/// <summary>
/// Rides with a proposed entry from the leader's <c>AppendAsync</c> to its state machine (DotNext hands an
/// <c>IInputLogEntry.Context</c> to <c>ApplyAsync</c> with the entry it was appended with, in memory, on that
/// member only). The state machine leaves the command's result here; the proposer reads it once
/// <c>ReplicateAsync</c> returns, which is after the entry is applied.
/// <para>
/// The context is keyed by log index inside the WAL, and a deposed leader's uncommitted entry can be replaced
/// at the same index by another leader's; so the result is only taken when the applied bytes are the ones
/// proposed. A proposer whose entry was replaced gets no result (and a NotLeader/NoLeader error).
/// </para>
/// </summary>
internal sealed class ProposalContext(byte[] payload)
{
    private CommandResult? _result;

    public byte[] Payload { get; } = payload;

    public CommandResult? Result => Volatile.Read(ref _result);

    public void TryComplete(ReadOnlySpan<byte> applied, CommandResult result)
    {
        if (applied.SequenceEqual(Payload)) Volatile.Write(ref _result, result);
    }
}
