using System.Globalization;
using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Storage.Snapshots;

namespace ParamDb.Server.Cli;

/// <summary>What the <c>paramdb snapshot …</c> commands share: the name argument and the one-line description of a snapshot.</summary>
internal static class SnapshotCli
{
    /// <summary>The NAME argument, checked as the node checks it, so a bad name is a usage error before any request.</summary>
    public static string Name(CliArguments arguments)
    {
        string name = arguments.Single("NAME");
        if (!SnapshotLibrary.IsValidName(name))
            throw new UsageException($"'{name}' is not a snapshot name: 1 to 128 of A-Z a-z 0-9 _ . -, not starting with a dot.");
        return name;
    }

    /// <summary><c>epoch-12  2026-11-24 10:02:11Z  2 tables  1000000 rows  1.03 GiB</c>.</summary>
    public static string Describe(SnapshotInfo s) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{s.Name}  {s.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z  {s.Tables.Count} table{(s.Tables.Count == 1 ? "" : "s")}  {s.Rows} rows  {ProgressBar.FormatBytes(s.Bytes)}");

    public const string NameDetail = "  NAME       1 to 128 of A-Z a-z 0-9 _ . -, not starting with a dot";
}

/// <summary><c>paramdb snapshot create NAME</c>: <c>POST /v1/snapshots</c>.</summary>
public sealed class SnapshotCreateCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["snapshot", "create"];

    /// <inheritdoc />
    public override string Synopsis => "NAME";

    /// <inheritdoc />
    public override string Summary => "Save every table, with its rows, clocks and workers, as snapshot NAME.";

    /// <inheritdoc />
    public override string Details => SnapshotCli.NameDetail + Environment.NewLine
        + "  Pushes keep flowing; the command returns once the snapshot is whole on disk." + Environment.NewLine;

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        string name = SnapshotCli.Name(arguments);
        using var http = CliHttp.CreateClient(arguments.Url);
        using var reply = await http.PostAsJsonAsync("v1/snapshots", new SnapshotRequest { Name = name }, ProtocolJson.Default.SnapshotRequest, cancellationToken);
        if (!reply.IsSuccessStatusCode) return await CliHttp.FailAsync(this, reply, console, cancellationToken);
        SnapshotInfo info = (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.SnapshotInfo, cancellationToken))!;
        await console.Out.WriteLineAsync("Created " + SnapshotCli.Describe(info));
        return 0;
    }
}

/// <summary><c>paramdb snapshot list</c>: <c>GET /v1/snapshots</c>, one line each, newest first.</summary>
public sealed class SnapshotListCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["snapshot", "list"];

    /// <inheritdoc />
    public override string Synopsis => "";

    /// <inheritdoc />
    public override string Summary => "List the node's snapshots, newest first: name, time, tables, rows, bytes.";

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        if (arguments.Positional.Count > 0) throw new UsageException($"snapshot list takes no arguments; got {string.Join(' ', arguments.Positional)}.");
        using var http = CliHttp.CreateClient(arguments.Url);
        using var reply = await http.GetAsync("v1/snapshots", cancellationToken);
        if (!reply.IsSuccessStatusCode) return await CliHttp.FailAsync(this, reply, console, cancellationToken);
        SnapshotList list = (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.SnapshotList, cancellationToken))!;
        if (list.Snapshots.Count == 0) await console.Error.WriteLineAsync("No snapshots.");
        foreach (SnapshotInfo snapshot in list.Snapshots) await console.Out.WriteLineAsync(SnapshotCli.Describe(snapshot));
        return 0;
    }
}

/// <summary><c>paramdb snapshot restore NAME</c>: <c>POST /v1/snapshots/{name}/restore</c>.</summary>
public sealed class SnapshotRestoreCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["snapshot", "restore"];

    /// <inheritdoc />
    public override string Synopsis => "NAME";

    /// <inheritdoc />
    public override string Summary => "Replace the node's whole state with snapshot NAME; writes made since are discarded.";

    /// <inheritdoc />
    public override string Details => SnapshotCli.NameDetail + Environment.NewLine
        + "  The node copies the snapshot while it serves, then holds requests while it swaps its data;" + Environment.NewLine
        + "  open streams end with a 503 and workers registered since must register again." + Environment.NewLine;

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        string name = SnapshotCli.Name(arguments);
        using var http = CliHttp.CreateClient(arguments.Url);
        using var reply = await http.PostAsync($"v1/snapshots/{name}/restore", null, cancellationToken);
        if (!reply.IsSuccessStatusCode) return await CliHttp.FailAsync(this, reply, console, cancellationToken);
        RestoreReply restored = (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.RestoreReply, cancellationToken))!;
        await console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"Restored {SnapshotCli.Describe(restored.Snapshot)} in {restored.DurationMs / 1000:0.00} s (requests held {restored.PausedMs:0} ms)."));
        return 0;
    }
}

/// <summary><c>paramdb snapshot delete NAME</c>: <c>DELETE /v1/snapshots/{name}</c>.</summary>
public sealed class SnapshotDeleteCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["snapshot", "delete"];

    /// <inheritdoc />
    public override string Synopsis => "NAME";

    /// <inheritdoc />
    public override string Summary => "Delete snapshot NAME.";

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        string name = SnapshotCli.Name(arguments);
        using var http = CliHttp.CreateClient(arguments.Url);
        using var reply = await http.DeleteAsync($"v1/snapshots/{name}", cancellationToken);
        if (!reply.IsSuccessStatusCode) return await CliHttp.FailAsync(this, reply, console, cancellationToken);
        await console.Out.WriteLineAsync($"Deleted snapshot '{name}'.");
        return 0;
    }
}

/// <summary>
/// <c>paramdb snapshot export NAME --table T [--out FILE]</c>: downloads
/// <c>GET /v1/snapshots/{name}/tables/{T}/export</c> with a progress bar.
/// </summary>
public sealed class SnapshotExportCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["snapshot", "export"];

    /// <inheritdoc />
    public override string Synopsis => "NAME --table T [--out FILE]";

    /// <inheritdoc />
    public override string Summary => "Download table T of snapshot NAME as a safetensors file.";

    /// <inheritdoc />
    public override IReadOnlyList<string> ValueOptions { get; } = ["--table", "--out"];

    /// <inheritdoc />
    public override string Details => SnapshotCli.NameDetail + Environment.NewLine + """
          --table T  the table to export
          --out FILE where to write it (default T.safetensors); an existing file is not overwritten

        The file is written as FILE.partial and renamed once whole, so an interrupted download never
        looks like a finished one. Read it with NumPy alone as docs/export.md shows.
        """;

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        string name = SnapshotCli.Name(arguments);
        string table = arguments.Required("--table", "the table to export");
        if (!TableNames.IsValid(table))
            throw new UsageException($"--table: '{table}' is not a table name (1 to {TableNames.MaxLength} characters of A-Z a-z 0-9 _ . -).");
        string path = Path.GetFullPath(arguments.Option("--out") ?? table + ".safetensors");
        if (File.Exists(path)) throw new UsageException($"--out: {path} exists; remove it or name another file.");
        string partial = path + ".partial";

        using var http = CliHttp.CreateClient(arguments.Url);
        using var reply = await http.GetAsync($"v1/snapshots/{name}/tables/{table}/export", HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!reply.IsSuccessStatusCode) return await CliHttp.FailAsync(this, reply, console, cancellationToken);
        var bar = new ProgressBar(console.Error, $"Downloading {table} of {name}", reply.Content.Headers.ContentLength, console.ErrorIsTerminal);
        try
        {
            await using (var body = await reply.Content.ReadAsStreamAsync(cancellationToken))
            await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous))
            {
                await bar.CopyAsync(body, file, cancellationToken);
                if (reply.Content.Headers.ContentLength is { } length && file.Length != length)
                    throw new HttpRequestException($"The node ended the download at {file.Length} of {length} bytes.");
            }
            File.Move(partial, path);
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
        bar.Complete();
        await console.Out.WriteLineAsync($"Wrote {path} ({ProgressBar.FormatBytes(new FileInfo(path).Length)}).");
        return 0;
    }
}
