using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ParamDb.Protocol;
using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Snapshots;

/// <summary>
/// The node's named snapshots (docs/durability.md), one folder each under <c>DATA/snapshots/</c>: create, list, delete,
/// read (exports) and stage for a restore. Outlives the <see cref="ParamStore"/>, which a restore replaces.
/// </summary>
/// <remarks>
/// <para>A snapshot is written under <c>.staging-{guid}</c> and renamed to its name once whole, so a listed
/// snapshot is always complete. A delete renames the folder to <c>.deleted-{guid}</c> before removing it; a
/// snapshot in use (an export reading it, a restore copying it) is marked with a <c>DELETED</c> file instead and
/// removed when the last user is done. Dot folders and marked folders left by a crash go when the library opens.</para>
/// <para>Thread-safe. Names are checked before they touch a path: a name is never a path.</para>
/// </remarks>
public sealed class SnapshotLibrary : IDisposable
{
    private const string DeletedMarker = "DELETED";

    private readonly string _dataRoot;
    private readonly StoreOptions _readerTemplate;
    private readonly ILogger _logger;
    private readonly Lock _sync = new();
    private readonly HashSet<string> _creating = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Use> _uses = new(StringComparer.Ordinal);

    /// <summary>Opens the snapshots of the data directory <paramref name="readerTemplate"/> names.</summary>
    /// <param name="readerTemplate">The node's store options: where the data lives, and the ring and memory a reader opens with.</param>
    /// <param name="keep">Snapshots kept: after a create, the oldest beyond this many are deleted. 0 keeps all.</param>
    /// <param name="logger">Receives create, delete and clean-up events.</param>
    public SnapshotLibrary(StoreOptions readerTemplate, int keep = 0, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(readerTemplate);
        ArgumentOutOfRangeException.ThrowIfNegative(keep);
        _readerTemplate = readerTemplate;
        _logger = logger ?? NullLogger.Instance;
        Keep = keep;
        _dataRoot = Path.GetFullPath(readerTemplate.DataDirectory);
        Root = Path.Combine(_dataRoot, "snapshots");
        Directory.CreateDirectory(Root);
        SweepLeftovers();
    }

    /// <summary><c>DATA/snapshots/</c>.</summary>
    public string Root { get; }

    /// <summary>Snapshots kept after a create (0: all).</summary>
    public int Keep { get; }

    /// <summary>Whether <paramref name="name"/> may name a snapshot: a table name that does not start with a dot.</summary>
    public static bool IsValidName(string? name) => name is not null && TableNames.IsValid(name) && name[0] != '.';

    /// <summary>Every snapshot, newest first (ties by name).</summary>
    public IReadOnlyList<SnapshotInfo> List()
    {
        var list = new List<SnapshotInfo>();
        foreach (string folder in Directory.GetDirectories(Root))
        {
            string name = Path.GetFileName(folder);
            if (!IsValidName(name) || File.Exists(Path.Combine(folder, DeletedMarker))) continue;
            try
            {
                list.Add(SnapshotFiles.ReadInfo(folder));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidDataException)
            {
                _logger.SnapshotUnreadable(folder, e);
            }
        }
        list.Sort((a, b) => b.CreatedAt != a.CreatedAt ? b.CreatedAt.CompareTo(a.CreatedAt) : string.CompareOrdinal(a.Name, b.Name));
        return list;
    }

    /// <summary>The snapshot named <paramref name="name"/>.</summary>
    /// <exception cref="SnapshotException">The name is invalid, or no snapshot has it.</exception>
    public SnapshotInfo Get(string name) => SnapshotFiles.ReadInfo(FolderOf(name));

    /// <summary>
    /// Takes a checkpoint of <paramref name="store"/> and copies it into a new snapshot: every table with its rows
    /// and vector clocks, and the worker registry, as of one cut. Pushes keep flowing; checkpoints wait for the copy.
    /// Then deletes the oldest snapshots beyond <see cref="Keep"/>.
    /// </summary>
    /// <exception cref="SnapshotException">The name is invalid or taken.</exception>
    public async Task<SnapshotInfo> CreateAsync(ParamStore store, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        CheckName(name);
        string target = Path.Combine(Root, name);
        lock (_sync)
        {
            if (File.Exists(Path.Combine(target, DeletedMarker)))
                throw new SnapshotException(SnapshotError.Exists, $"The snapshot named '{name}' was deleted, but an export or restore still reads it; the name is free once that ends. Pick another name, or retry then.");
            if (Directory.Exists(target) || !_creating.Add(name))
                throw new SnapshotException(SnapshotError.Exists, $"A snapshot named '{name}' already exists; snapshots are never overwritten. Delete it first, or pick another name.");
        }
        string staging = Path.Combine(Root, ".staging-" + Guid.NewGuid().ToString("N"));
        try
        {
            var clock = Stopwatch.StartNew();
            SnapshotInfo? info = null;
            CheckpointResult checkpoint = await store.CheckpointForSnapshotAsync(image => info = SnapshotFiles.Copy(image, name, staging), cancellationToken).ConfigureAwait(false);
            Directory.Move(staging, target);
            FileSync.Directory(Root);   // the snapshot exists once its name does
            _logger.SnapshotCreated(name, checkpoint.Token, info!.Tables.Count, info.Rows, info.Bytes, clock.ElapsedMilliseconds);
            Retain(name);
            return info;
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
        finally
        {
            lock (_sync) _creating.Remove(name);
        }
    }

    /// <summary>
    /// Deletes a snapshot. It vanishes from the list at once; its files go now, or when the export or restore
    /// reading it ends.
    /// </summary>
    /// <returns>False when no snapshot has that name.</returns>
    /// <exception cref="SnapshotException">The name is invalid.</exception>
    public bool Delete(string name)
    {
        CheckName(name);
        string folder = Path.Combine(Root, name);
        string doomed;
        lock (_sync)
        {
            if (!Directory.Exists(folder) || File.Exists(Path.Combine(folder, DeletedMarker))) return false;
            if (_uses.ContainsKey(name))
            {
                SnapshotFiles.WriteSynced(Path.Combine(folder, DeletedMarker), []);
                _logger.SnapshotDeleted(name, " (its files go when the export or restore reading it ends)");
                return true;
            }
            doomed = Path.Combine(Root, ".deleted-" + Guid.NewGuid().ToString("N"));
            Directory.Move(folder, doomed);
        }
        Directory.Delete(doomed, recursive: true);
        _logger.SnapshotDeleted(name, "");
        return true;
    }

    /// <summary>
    /// Opens a snapshot for reading (exports). Readers of one snapshot share one read-only store, closed when the
    /// last reader is disposed.
    /// </summary>
    /// <exception cref="SnapshotException">The name is invalid, or no snapshot has it.</exception>
    /// <exception cref="InvalidDataException">The snapshot's checkpoint is damaged.</exception>
    public SnapshotReader OpenReader(string name)
    {
        Use use = Enter(name);
        try
        {
            lock (use)
            {
                use.Store ??= ParamStore.Open(new StoreOptions
                {
                    DataDirectory = Path.Combine(Root, name),
                    MemoryBytes = ReaderMemoryBytes,
                    Ring = _readerTemplate.Ring,
                    Durability = DurabilityMode.Checkpoint,
                    ReadOnly = true,
                    TempDirectory = Path.Combine(_dataRoot, "tmp"),
                }, _logger);
                use.Readers++;
                return new SnapshotReader(this, name, SnapshotFiles.ReadInfo(Path.Combine(Root, name)), use.Store);
            }
        }
        catch
        {
            Exit(name, use);
            throw;
        }
    }

    /// <summary>
    /// Copies a snapshot into <c>DATA/restore/</c> and marks it ready (see <see cref="RestoreStaging"/>): the next
    /// open of the store, which the host does at once, swaps it in. Runs while the node keeps serving.
    /// </summary>
    /// <exception cref="SnapshotException">The name is invalid, or no snapshot has it.</exception>
    /// <exception cref="InvalidDataException">The snapshot's checkpoint fails its manifest; nothing was staged.</exception>
    public SnapshotInfo StageRestore(string name)
    {
        Use use = Enter(name);
        try
        {
            var clock = Stopwatch.StartNew();
            string snapshot = Path.Combine(Root, name);
            SnapshotInfo info = SnapshotFiles.ReadInfo(snapshot);
            SnapshotFiles.Verify(snapshot);   // before the node's data is touched: a damaged snapshot changes nothing
            string staging = RestoreStaging.StagingDirectory(_dataRoot);
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);   // a copy that died half way
            SnapshotFiles.CopyState(snapshot, staging);
            SnapshotFiles.WriteSynced(RestoreStaging.ReadyMarker(_dataRoot), []);
            _logger.RestoreStaged(name, clock.ElapsedMilliseconds);
            return info;
        }
        finally
        {
            Exit(name, use);
        }
    }

    /// <summary>
    /// After a staged restore failed to open: puts the node's own state back in place (see
    /// <see cref="RestoreStaging.RollBack"/>). The store must be closed.
    /// </summary>
    public void RollBackRestore() => RestoreStaging.RollBack(_dataRoot);

    /// <summary>Closes every reader's store (the host calls it at shutdown, after requests have ended).</summary>
    public void Dispose()
    {
        lock (_sync)
        {
            foreach (Use use in _uses.Values)
            {
                use.Store?.Dispose();
                use.Store = null;
            }
        }
    }

    /// <summary>A reader's store lives in this much memory: 64 MiB, so exports of snapshots do not double the node's.</summary>
    private const long ReaderMemoryBytes = 64L << 20;

    internal void Release(string name)
    {
        Use use;
        lock (_sync) use = _uses[name];
        lock (use)
        {
            if (--use.Readers == 0)
            {
                use.Store?.Dispose();
                use.Store = null;
            }
        }
        Exit(name, use);
    }

    private Use Enter(string name)
    {
        string folder = FolderOf(name);
        lock (_sync)
        {
            if (!Directory.Exists(folder) || File.Exists(Path.Combine(folder, DeletedMarker))) throw SnapshotException.NotFound(name);
            if (!_uses.TryGetValue(name, out Use? use)) _uses[name] = use = new Use();
            use.Count++;
            return use;
        }
    }

    private void Exit(string name, Use use)
    {
        string? doomed = null;
        lock (_sync)
        {
            if (--use.Count > 0) return;
            _uses.Remove(name);
            string folder = Path.Combine(Root, name);
            if (File.Exists(Path.Combine(folder, DeletedMarker)))
            {
                doomed = Path.Combine(Root, ".deleted-" + Guid.NewGuid().ToString("N"));
                Directory.Move(folder, doomed);
            }
        }
        if (doomed is not null) Directory.Delete(doomed, recursive: true);
    }

    private void Retain(string created)
    {
        if (Keep == 0) return;
        IReadOnlyList<SnapshotInfo> all = List();
        for (int i = Keep; i < all.Count; i++)
        {
            if (all[i].Name == created) continue;   // same instant as an older one: never drop the one just made
            try
            {
                Delete(all[i].Name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The new snapshot is whole; an old one that cannot go now is retried after the next create.
                _logger.SnapshotNotRetired(all[i].Name, e);
            }
        }
    }

    private string FolderOf(string name)
    {
        CheckName(name);
        string folder = Path.Combine(Root, name);
        if (!File.Exists(Path.Combine(folder, SnapshotFiles.InfoFile)) || File.Exists(Path.Combine(folder, DeletedMarker))) throw SnapshotException.NotFound(name);
        return folder;
    }

    private static void CheckName(string name)
    {
        if (!IsValidName(name))
            throw new SnapshotException(SnapshotError.InvalidName, $"'{name}' is not a snapshot name: use 1 to 128 of A-Z a-z 0-9 _ . - and do not start with a dot.");
    }

    private void SweepLeftovers()
    {
        int swept = 0;
        foreach (string folder in Directory.GetDirectories(Root))
        {
            string name = Path.GetFileName(folder);
            if (name[0] != '.' && !File.Exists(Path.Combine(folder, DeletedMarker))) continue;
            Directory.Delete(folder, recursive: true);
            swept++;
        }
        if (swept > 0) _logger.SnapshotLeftoversDeleted(swept, Root);
    }

    /// <summary>Who uses a snapshot: <see cref="Count"/> exports and restores in all, and the readers' shared store.</summary>
    private sealed class Use
    {
        public int Count;
        public int Readers;
        public ParamStore? Store;
    }
}

/// <summary>An open, read-only snapshot; dispose it when done (the last reader closes the store).</summary>
public sealed class SnapshotReader : IDisposable
{
    private readonly SnapshotLibrary _library;
    private int _disposed;

    internal SnapshotReader(SnapshotLibrary library, string name, SnapshotInfo info, ParamStore store)
    {
        _library = library;
        Name = name;
        Info = info;
        Store = store;
    }

    /// <summary>The snapshot's name.</summary>
    public string Name { get; }

    /// <summary>What it holds.</summary>
    public SnapshotInfo Info { get; }

    /// <summary>The snapshot as a store, to read from (its tables, <see cref="ParamStore.PrepareExport"/>); never write to it.</summary>
    public ParamStore Store { get; }

    /// <summary>Finds a table of the snapshot by name.</summary>
    public bool TryGetTable(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TableHandle? table) => Store.TryGetTable(name, out table);

    /// <summary>Prepares the export of one of the snapshot's tables (see <see cref="ParamStore.PrepareExport"/>).</summary>
    public Export.TableExport PrepareExport(TableHandle table, int runKeys, CancellationToken cancellationToken) => Store.PrepareExport(table, runKeys, cancellationToken);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _library.Release(Name);
    }
}
