using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Mime;
using ParamDb.Protocol;

namespace ParamDb.Server.Cli;

/// <summary>
/// <c>paramdb import FILE --table T [--url URL]</c>: streams a safetensors file to
/// <c>POST /v1/tables/{T}/import</c> with a progress bar, and prints what the node imported.
/// </summary>
public sealed class ImportCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["import"];

    /// <inheritdoc />
    public override string Synopsis => "FILE --table T";

    /// <inheritdoc />
    public override string Summary => "Load a safetensors file (an export, or one written as docs/export.md shows) into table T.";

    /// <inheritdoc />
    public override IReadOnlyList<string> ValueOptions { get; } = ["--table"];

    /// <inheritdoc />
    public override string Details => """

          FILE       a safetensors file: keys U64 [n] strictly ascending, values F32 [n, dim], and the table
                     schema in its metadata (docs/export.md)
          --table T  the table to load it into: created from the file's schema when missing; otherwise it
                     must have the same schema, and the file's rows overwrite its rows (others are kept)
          --url URL  the node (default http://127.0.0.1:7420)

        The file streams to the node (a progress bar on stderr), which checks it whole before it applies
        anything: a bad file changes nothing. What was imported is printed on stdout.
        """;

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        string path = arguments.Single("FILE");
        string table = arguments.Required("--table", "the table to import into");
        if (!TableNames.IsValid(table))
            throw new UsageException($"--table: '{table}' is not a table name (1 to {TableNames.MaxLength} characters of A-Z a-z 0-9 _ . -).");
        Uri url = arguments.Url;
        FileStream file;
        try
        {
            // No FileStream buffer: the copy reads 1 MiB at a time already.
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan | FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read '{path}': {e.Message}");
        }
        await using (file)
        {
            var bar = new ProgressBar(console.Error, $"Uploading {Path.GetFileName(path)}", file.Length, console.ErrorIsTerminal);
            using var http = CliHttp.CreateClient(url);
            var content = new ProgressContent(file, bar, "Sent; the node is checking the file and applying it.");
            content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypeNames.Application.Octet);
            using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/tables/{table}/import") { Content = content };
            // The node refuses a file over --max-import, a bad name or a stopped store before it reads the body:
            // with 100-continue, nothing of a many-GB file is sent for such a refusal.
            request.Headers.ExpectContinue = true;
            using HttpResponseMessage reply = await http.SendAsync(request, cancellationToken);
            if (!reply.IsSuccessStatusCode) return await CliHttp.FailAsync(this, reply, console, cancellationToken);
            ImportReply result = await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.ImportReply, cancellationToken)
                ?? throw new HttpRequestException($"The node answered {(int)reply.StatusCode} with no import result.");
            await console.Out.WriteLineAsync(
                $"Imported {result.Rows} rows ({ProgressBar.FormatBytes(result.Bytes)}) into {(result.Created ? "new" : "existing")} table '{result.Table}' (dim {result.Schema.Dim}).");
            if (result.NonFiniteValues > 0)
                await console.Error.WriteLineAsync($"paramdb import: warning: {result.NonFiniteValues} of the values are NaN or ±Infinity; they were stored as they are.");
            return 0;
        }
    }
}
