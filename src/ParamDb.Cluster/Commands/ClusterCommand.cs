using ParamDb.Cluster.Metadata;
using ParamDb.Cluster.Wire;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Commands;

/// <summary>Stable ids of the metadata commands: the first two bytes of every entry. Only ever added.</summary>
public enum CommandId : ushort
{
    /// <summary><see cref="Commands.InitCluster"/>.</summary>
    InitCluster = 1,
    /// <summary><see cref="Commands.AddNode"/>.</summary>
    AddNode = 2,
    /// <summary><see cref="Commands.SetNodeState"/>.</summary>
    SetNodeState = 3,
    /// <summary><see cref="Commands.RemoveNode"/>.</summary>
    RemoveNode = 4,
    /// <summary><see cref="Commands.CreateTable"/>.</summary>
    CreateTable = 5,
    /// <summary><see cref="Commands.DeleteTable"/>.</summary>
    DeleteTable = 6,
    /// <summary><see cref="Commands.RegisterWorker"/>.</summary>
    RegisterWorker = 7,
    /// <summary><see cref="Commands.RemoveWorker"/>.</summary>
    RemoveWorker = 8,
    /// <summary><see cref="Commands.MarkStandIns"/>.</summary>
    MarkStandIns = 9,
}

/// <summary>
/// A change to the cluster's metadata, replicated through the Raft log. Every command encodes as
/// <code>u16 command id | u8 body version | body</code>
/// all integers little-endian; each command's summary draws its body. A body only ever grows: new fields go
/// after the old ones under a higher version byte, and a reader refuses versions it does not know.
/// <para>
/// Applying is a pure function of (state, command): every member applies the same log to the same state and
/// computes the same <see cref="CommandResult"/>. A command that cannot apply (unknown node, table existing with
/// another schema, cluster not initialized) leaves the state unchanged and reports why in its result.
/// </para>
/// </summary>
public abstract record ClusterCommand
{
    /// <summary>This command's id.</summary>
    public abstract CommandId Id { get; }

    /// <summary>The body version this build writes.</summary>
    internal virtual byte Version => 1;

    /// <summary>False only for <see cref="InitCluster"/>: every other command is a no-op before init.</summary>
    private protected virtual bool NeedsInitializedCluster => true;

    /// <summary>
    /// The command as it should go into the log: validated (throws <see cref="ArgumentException"/> naming the
    /// broken rule) and normalized (a table's schema gets its defaults filled in).
    /// </summary>
    public virtual ClusterCommand Prepare()
    {
        if (Problem() is { } problem) throw new ArgumentException(problem);
        return this;
    }

    /// <summary>The command's bytes (<see cref="CommandCodec.Encode"/>).</summary>
    public byte[] ToBytes() => CommandCodec.Encode(this);

    /// <summary>Why the command breaks a rule that does not depend on the state, or null. Checked again when applied.</summary>
    internal abstract string? Problem();

    internal abstract void WriteBody(WireWriter writer);

    /// <summary>The state after this command, given a state it may apply to (initialized unless <see cref="NeedsInitializedCluster"/> is false).</summary>
    private protected abstract ClusterState ApplyCore(ClusterState state, out CommandResult result);

    /// <summary>Applies the command: the next state and what happened. Never throws for a command that decoded.</summary>
    internal ClusterState Apply(ClusterState state, out CommandResult result)
    {
        var next = state;
        if (Problem() is { } problem)
            result = new CommandResult(CommandOutcome.Invalid, Detail: problem);
        else if (NeedsInitializedCluster && !state.IsInitialized)
            result = new CommandResult(CommandOutcome.NotInitialized, Detail: "The cluster has not been initialized.");
        else
            next = ApplyCore(state, out result);
        result = result with { RingEpoch = next.RingEpoch };
        return next;
    }

    private protected static CommandResult Outcome(CommandOutcome outcome, uint? id = null, string? detail = null) => new(outcome, id, detail);
}
