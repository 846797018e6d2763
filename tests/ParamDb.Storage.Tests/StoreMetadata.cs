using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging.Abstractions;
using ParamDb.Storage.Local;

namespace ParamDb.Storage.Tests;

/// <summary>
/// Table and worker changes as the tests make them: through the single node's directories
/// (<see cref="LocalTableDirectory"/>, <see cref="LocalWorkerDirectory"/>), one pair per open store, as the host
/// wires them.
/// </summary>
public static class StoreMetadata
{
    private static readonly ConditionalWeakTable<ParamStore, Directories> Wired = new();

    private sealed record Directories(LocalTableDirectory Tables, LocalWorkerDirectory Workers);

    private static Directories Of(ParamStore store) =>
        Wired.GetValue(store, s => new Directories(new LocalTableDirectory(s, NullLogger.Instance), new LocalWorkerDirectory(s, NullLogger.Instance)));

    /// <summary>The store's table directory.</summary>
    public static LocalTableDirectory TableDirectory(this ParamStore store) => Of(store).Tables;

    /// <summary>The store's worker directory.</summary>
    public static LocalWorkerDirectory WorkerDirectory(this ParamStore store) => Of(store).Workers;

    public static CreateTableOutcome CreateTable(this ParamStore store, string name, TableSchema schema, out TableHandle table)
    {
        TableCreation creation = Of(store).Tables.CreateAsync(name, schema, default).AsTask().GetAwaiter().GetResult();
        table = creation.Table;
        return creation.Outcome;
    }

    public static bool DeleteTable(this ParamStore store, string name) => Of(store).Tables.DeleteAsync(name, default).AsTask().GetAwaiter().GetResult();

    public static WorkerState RegisterWorker(this ParamStore store, string name, IReadOnlyList<string> tables, int leaseMs) =>
        Of(store).Workers.RegisterAsync(name, tables, leaseMs, default).AsTask().GetAwaiter().GetResult();

    public static bool TryHeartbeat(this ParamStore store, uint worker, out WorkerState state)
    {
        WorkerState? beat = Of(store).Workers.HeartbeatAsync(worker, default).AsTask().GetAwaiter().GetResult();
        state = beat ?? default;
        return beat is not null;
    }

    public static IReadOnlyList<WorkerState> ListWorkers(this ParamStore store) => Of(store).Workers.List();

    public static bool RemoveWorker(this ParamStore store, uint worker) => Of(store).Workers.RemoveAsync(worker, default).AsTask().GetAwaiter().GetResult();
}
