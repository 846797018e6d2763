using ParamDb.Storage.Export;
using ParamDb.Storage.Import;

namespace ParamDb.Storage;

/// <summary>
/// What the node's operations need of its storage beyond the data path: checkpoints, and whole tables moved in
/// and out as files (docs/export.md). <see cref="ParamStore"/> implements it for one node; a cluster fans
/// checkpoints out to every node, merges exports and routes imported rows.
/// </summary>
/// <remarks>Concurrency: every member may be called while pushes and pulls run.</remarks>
public interface INodeStorage
{
    /// <summary>When the newest checkpoint became durable; null when there is none.</summary>
    DateTimeOffset? LastCheckpoint { get; }

    /// <summary>Takes a checkpoint now; completes when it is durable.</summary>
    Task<CheckpointResult> CheckpointAsync(CancellationToken cancellationToken = default);

    /// <summary>A temporary file under the data folder, open for reading and writing and deleted when closed: an import's body, a cluster's merge order.</summary>
    FileStream CreateSpoolFile();

    /// <summary>Applies a checked import file to a table (see <see cref="ParamStore.Import"/>).</summary>
    ImportResult Import(TableImport file, TableHandle table, CancellationToken cancellationToken = default);

    /// <summary>Prepares a table's export as a safetensors file (see <see cref="ParamStore.PrepareExport"/>).</summary>
    TableExport PrepareExport(TableHandle table, int runKeys = TableExport.DefaultRunKeys, CancellationToken cancellationToken = default);
}
