using Microsoft.Extensions.Logging.Abstractions;

namespace ParamDb.Storage;

/// <summary>
/// Recovery of a data directory with no node running (<c>paramdb recover</c>, docs/durability.md): opens the store,
/// which recovers it or refuses, and when the options accept a loss of write-ahead log records, checkpoints the
/// result so the node starts from it.
/// </summary>
public static class OfflineRecovery
{
    /// <summary>Recovers the directory of <paramref name="options"/>; the caller holds its lock.</summary>
    /// <exception cref="InvalidDataException">The directory does not recover (the message says why and what to do).</exception>
    public static async Task<RecoveryReport> RunAsync(StoreOptions options, CancellationToken cancellationToken)
    {
        using ParamStore store = ParamStore.Open(options, NullLogger.Instance);
        if (store.AcceptedLoss is { } loss)
        {
            await store.CheckpointAsync(cancellationToken).ConfigureAwait(false);
            return new RecoveryReport(store.ListTables().Count, loss);
        }
        return new RecoveryReport(store.ListTables().Count, null);
    }
}

/// <summary>What an offline recovery found.</summary>
/// <param name="Tables">Live tables in the recovered state.</param>
/// <param name="AcceptedLoss">What was dropped, when a loss was accepted; null when the directory recovered whole.</param>
public readonly record struct RecoveryReport(int Tables, string? AcceptedLoss);
