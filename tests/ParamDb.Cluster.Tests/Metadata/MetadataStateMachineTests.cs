using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using ParamDb.Cluster.Raft;
using ParamDb.Cluster.Tests.Support;
using static ParamDb.Cluster.Tests.Support.Samples;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Cluster.Tests.Metadata;

/// <summary>The state machine under DotNext's real write-ahead log, without the network.</summary>
public sealed class MetadataStateMachineTests
{
    private static readonly ClusterCommand[] Script =
    [
        Init(),
        new AddNode(Node("n2", 2, NodeState.Joining)),
        new CreateTable("emb", Schema()),
        new CreateTable("emb", Schema()),
        new RegisterWorker("w", ["emb"], 10_000),
        new SetNodeState("n2", NodeState.Up),
        new CreateTable("bias", Schema(1)),
        new RemoveWorker(1, WorkerRemovalReason.Deregistered),
    ];

    /// <summary>A state machine and its WAL in a directory, opened the way the server manager opens them.</summary>
    private sealed class Log : IAsyncDisposable
    {
        public required MetadataStateMachine Machine { get; init; }
        public required WriteAheadLog Wal { get; init; }

        public static async Task<Log> OpenAsync(TempDirectory dir)
        {
            var machine = new MetadataStateMachine(new DirectoryInfo(dir.Sub("state")));
            await machine.RestoreAsync();
            var wal = new WriteAheadLog(new WriteAheadLog.Options { Location = dir.Sub("wal") }, machine);
            await wal.InitializeAsync();
            return new Log { Machine = machine, Wal = wal };
        }

        public async Task<(long Index, CommandResult? Result)> CommitAsync(byte[] payload, object? context = null)
        {
            long index = await Wal.AppendAsync(new BinaryLogEntry { Content = payload, Term = 1, Context = context });
            await Wal.CommitAsync(index);
            await Wal.WaitForApplyAsync(index);
            return (index, (context as ProposalContext)?.Result);
        }

        public async ValueTask DisposeAsync()
        {
            await Wal.FlushAsync();
            await Wal.DisposeAsync();
            await Machine.DisposeAsync();
        }
    }

    [Fact]
    public async Task Applied_commands_are_the_same_state_after_close_and_reopen()
    {
        using var dir = new TempDirectory();
        ClusterState before;
        await using (var log = await Log.OpenAsync(dir))
        {
            foreach (var command in Script) await log.CommitAsync(command.ToBytes());
            before = log.Machine.State;
        }
        Assert.Equal(["bias", "emb"], before.Tables.Keys);
        Assert.Equal(3UL, before.RingEpoch);

        await using var reopened = await Log.OpenAsync(dir);
        Assert.Equal(before, reopened.Machine.State);
        Assert.Equal(reopened.Wal.LastCommittedEntryIndex, reopened.Wal.LastAppliedIndex);
    }

    [Fact]
    public async Task The_newest_snapshot_alone_restores_the_state_as_of_its_index()
    {
        using var dir = new TempDirectory();
        var states = new Dictionary<long, ClusterState>();
        await using (var log = await Log.OpenAsync(dir))
        {
            foreach (var command in Script)
            {
                var (index, _) = await log.CommitAsync(command.ToBytes());
                states[index] = log.Machine.State;
            }
        }
        // SimpleStateMachine names snapshots "<index>-<term>" and keeps the newest committed one.
        var newest = new DirectoryInfo(dir.Sub("state")).GetFiles()
            .Select(f => (File: f, Index: long.Parse(f.Name.Split('-')[0])))
            .MaxBy(s => s.Index);
        Assert.NotNull(newest.File);

        using var onlySnapshot = new TempDirectory();
        Directory.CreateDirectory(onlySnapshot.Sub("state"));
        newest.File.CopyTo(Path.Combine(onlySnapshot.Sub("state"), newest.File.Name));
        var machine = new MetadataStateMachine(new DirectoryInfo(onlySnapshot.Sub("state")));
        await using (machine)
        {
            await machine.RestoreAsync();
            Assert.Equal(states[newest.Index], machine.State);
        }
    }

    [Fact]
    public async Task The_proposer_reads_each_result_from_its_entry_context()
    {
        using var dir = new TempDirectory();
        await using var log = await Log.OpenAsync(dir);
        var results = new List<CommandResult>();
        foreach (var command in Script)
        {
            byte[] payload = command.ToBytes();
            var (index, result) = await log.CommitAsync(payload, new ProposalContext(payload));
            Assert.NotNull(result);
            Assert.Equal(index, result.LogIndex);
            results.Add(result);
        }
        Assert.Equal(
            [CommandOutcome.Applied, CommandOutcome.Applied, CommandOutcome.Created, CommandOutcome.AlreadyExists,
             CommandOutcome.Created, CommandOutcome.Applied, CommandOutcome.Created, CommandOutcome.Applied],
            results.Select(r => r.Outcome));
        Assert.Equal([null, null, 1u, 1u, 1u, null, 2u, 1u], results.Select(r => r.Id));
    }

    [Fact]
    public async Task A_context_whose_bytes_differ_from_the_applied_entry_gets_no_result()
    {
        using var dir = new TempDirectory();
        await using var log = await Log.OpenAsync(dir);
        var (_, result) = await log.CommitAsync(Init().ToBytes(), new ProposalContext(new DeleteTable("x").ToBytes()));
        Assert.Null(result);
        Assert.True(log.Machine.State.IsInitialized);
    }

    [Fact]
    public async Task An_undecodable_entry_applies_as_invalid_and_the_log_goes_on()
    {
        using var dir = new TempDirectory();
        await using var log = await Log.OpenAsync(dir);
        byte[] garbage = [0x63, 0x00, 0x01];
        var (_, bad) = await log.CommitAsync(garbage, new ProposalContext(garbage));
        Assert.Equal(CommandOutcome.Invalid, bad!.Outcome);
        Assert.StartsWith("Unknown command id 99", bad.Detail);

        var (_, good) = await log.CommitAsync(Init().ToBytes(), new ProposalContext(Init().ToBytes()));
        Assert.Equal(CommandOutcome.Applied, good!.Outcome);
    }

    [Fact]
    public async Task StateChanged_fires_for_changes_only_and_a_throwing_handler_does_not_stop_the_log()
    {
        using var dir = new TempDirectory();
        await using var log = await Log.OpenAsync(dir);
        var seen = new List<ulong>();
        log.Machine.StateChanged += _ => throw new InvalidOperationException("handler bug");
        log.Machine.StateChanged += s => seen.Add(s.RingEpoch);
        await log.CommitAsync(Init().ToBytes());
        await log.CommitAsync(Init().ToBytes()); // already exists: no change
        await log.CommitAsync(new AddNode(Node("n2", 2)).ToBytes());
        Assert.Equal([1UL, 2UL], seen);
    }
}
