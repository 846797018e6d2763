using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>The store's part in snapshots: a checkpoint whose files a snapshot copies while they are pinned.</summary>
public sealed partial class ParamStore
{
    /// <summary>
    /// Takes a checkpoint and calls <paramref name="copy"/> with it before anything may move or delete its files
    /// (see <see cref="Snapshots.SnapshotLibrary"/>, which copies them into the snapshot).
    /// </summary>
    internal Task<CheckpointResult> CheckpointForSnapshotAsync(Action<CheckpointImage> copy, CancellationToken cancellationToken) =>
        CheckpointCoreAsync(copy, cancellationToken);

    /// <summary>
    /// The tables, their rows and the workers at the cut. Called with the push gate held exclusively: no push is
    /// half applied and no table or worker change is under way, so the counts describe exactly what the checkpoint
    /// holds.
    /// </summary>
    private CutContents CaptureContents()
    {
        IReadOnlyList<TableHandle> tables = _catalog.Sorted;
        var list = new SnapshotTable[tables.Count];
        for (int i = 0; i < list.Length; i++)
            list[i] = new SnapshotTable { Name = tables[i].Name, Schema = tables[i].Schema, Rows = tables[i].Rows };
        return new CutContents(list, _registry.All.Length);
    }
}

/// <summary>What a checkpoint holds, counted at its cut.</summary>
/// <param name="Tables">Every table, by name, with its rows.</param>
/// <param name="Workers">Registered workers.</param>
internal sealed record CutContents(IReadOnlyList<SnapshotTable> Tables, int Workers);

/// <summary>A durable checkpoint and where its files are, handed to a snapshot while they are pinned.</summary>
/// <param name="Token">The checkpoint's folder name under <c>checkpoints/cpr-checkpoints/</c> and <c>index-checkpoints/</c>.</param>
/// <param name="Cut">The newest write-ahead log record it holds.</param>
/// <param name="CompletedAt">When it became durable.</param>
/// <param name="Contents">Tables, rows and workers at the cut.</param>
/// <param name="CheckpointDirectory">The store's <c>checkpoints/</c>.</param>
/// <param name="LogDirectory">The store's <c>log/</c> (hybrid-log segments <c>hlog.log.N</c>).</param>
/// <param name="FirstSegment">The segment holding the log's begin address; those below are garbage.</param>
internal sealed record CheckpointImage(Guid Token, long Cut, DateTimeOffset CompletedAt, CutContents Contents,
    string CheckpointDirectory, string LogDirectory, long FirstSegment);
