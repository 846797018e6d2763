using System.Diagnostics;
using ParamDb.Protocol.Safetensors;
using ParamDb.Storage.Export;

namespace ParamDb.Storage;

/// <summary>Live table exports: scan, external sort, and the temporary files of exports and imports under <c>DATA/tmp/</c>.</summary>
public sealed partial class ParamStore
{
    private readonly Lock _tempSweep = new();
    private bool _tempSwept;

    /// <summary>
    /// Where exports keep their sorted runs and imports their bodies: <c>DATA/tmp/</c>, one <c>export-&lt;guid&gt;</c>
    /// folder per export, one <c>spool-&lt;guid&gt;</c> file per spooled body or merge order.
    /// </summary>
    internal string TempDirectory => _options.TempDirectory ?? Path.Combine(Path.GetFullPath(_options.DataDirectory), "tmp");

    /// <summary>
    /// Prepares a live export of <paramref name="table"/> as a safetensors file: scans its keys
    /// (<see cref="ScanKeys"/>) and sorts them in bounded memory, spilling runs of <paramref name="runKeys"/> keys
    /// to <c>DATA/tmp/export-&lt;guid&gt;/</c>. The returned export knows the file's length and writes the file.
    /// </summary>
    /// <param name="table">The table to export.</param>
    /// <param name="runKeys">Keys sorted in memory at once, 8 bytes each: the default 4 Mi keys is 32 MiB. Tests
    /// set it small to force many runs.</param>
    /// <param name="cancellationToken">Stops the scan and the merge.</param>
    /// <returns>The export; dispose it to delete its temporary files, whether or not it was written.</returns>
    /// <remarks>
    /// Not a point-in-time view: rows created during the scan may or may not be in the file, rows created after it
    /// are not, and values are read when their batch is written. The first export after the store opens deletes any
    /// <c>export-*</c> folders left by a process that died mid-export: none of this store's exports exists yet.
    /// </remarks>
    public TableExport PrepareExport(TableHandle table, int runKeys = TableExport.DefaultRunKeys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentOutOfRangeException.ThrowIfLessThan(runKeys, 1);
        SweepTemporaryFiles();
        var clock = Stopwatch.StartNew();
        var sort = new ExternalKeySort(Path.Combine(TempDirectory, ExportFolderPrefix + Guid.NewGuid().ToString("N")), runKeys);
        try
        {
            long scanned = ScanKeys(table, sort, cancellationToken);
            long rows = sort.Finish(cancellationToken);
            var export = new TableExport(this, table, sort, SafetensorsHeader.Create(table.Name, table.Schema, rows));
            _logger.ExportPrepared(table.Name, scanned, rows, sort.RunsWritten, clock.ElapsedMilliseconds);
            return export;
        }
        catch
        {
            sort.Dispose();
            throw;
        }
    }

    /// <summary>Name prefix of an export's folder under <see cref="TempDirectory"/>.</summary>
    private const string ExportFolderPrefix = "export-";

    /// <summary>Name prefix of a spool file under <see cref="TempDirectory"/> (<see cref="CreateSpoolFile"/>).</summary>
    private const string SpoolFilePrefix = "spool-";

    /// <summary>Name prefix of the spool files of versions before <see cref="SpoolFilePrefix"/>, swept as well.</summary>
    private const string LegacyImportFilePrefix = "import-";

    /// <summary>
    /// Once per store, before its first export or import: deletes the export folders and import files of an earlier
    /// process (see <see cref="PrepareExport"/> and <see cref="CreateSpoolFile"/>). None of this store's exists yet:
    /// every one is created after this ran.
    /// </summary>
    private void SweepTemporaryFiles()
    {
        lock (_tempSweep)
        {
            if (_tempSwept) return;
            _tempSwept = true;
            if (!Directory.Exists(TempDirectory)) return;
            int exports = 0, imports = 0;
            foreach (string abandoned in Directory.EnumerateFileSystemEntries(TempDirectory))
            {
                string name = Path.GetFileName(abandoned);
                bool export = name.StartsWith(ExportFolderPrefix, StringComparison.Ordinal);
                if (!export && !name.StartsWith(SpoolFilePrefix, StringComparison.Ordinal) && !name.StartsWith(LegacyImportFilePrefix, StringComparison.Ordinal)) continue;
                try
                {
                    if (Directory.Exists(abandoned)) Directory.Delete(abandoned, recursive: true);
                    else File.Delete(abandoned);
                    if (export) exports++;
                    else imports++;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // A leftover that cannot go is the operator's to remove; it must not fail the export or import.
                    if (export) _logger.AbandonedExportNotDeleted(abandoned, e);
                    else _logger.AbandonedImportNotDeleted(abandoned, e);
                }
            }
            if (exports > 0) _logger.AbandonedExportsDeleted(exports, TempDirectory);
            if (imports > 0) _logger.AbandonedImportsDeleted(imports, TempDirectory);
        }
    }
}
