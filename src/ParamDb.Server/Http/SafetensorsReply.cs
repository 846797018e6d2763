using System.Net.Mime;
using ParamDb.Storage.Export;

namespace ParamDb.Server.Http;

/// <summary>
/// A table export streamed as a safetensors download: <c>application/octet-stream</c>, an attachment named
/// <c>&lt;table&gt;.safetensors</c>, and a Content-Length, known because the keys were counted before the reply
/// starts. The export's temporary files are deleted when the reply ends, however it ends.
/// </summary>
/// <param name="export">The prepared export; the reply owns it from here on.</param>
/// <param name="fileName">The download's name; a table name, so it needs no escaping.</param>
public sealed class SafetensorsReply(ITableExport export, string fileName) : IResult
{
    /// <inheritdoc />
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        using var owned = export;
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = MediaTypeNames.Application.Octet;
        response.ContentLength = export.Length;
        response.Headers.ContentDisposition = $"attachment; filename=\"{fileName}\"";
        // A live export differs from one request to the next: no cache may answer for it.
        response.Headers.CacheControl = "no-store";
        try
        {
            await export.WriteToAsync(response.Body, httpContext.RequestAborted);
        }
        catch (OperationCanceledException) when (httpContext.RequestAborted.IsCancellationRequested)
        {
            // The client left; nobody is there to answer, and the using above deletes the temporary files.
        }
    }
}
