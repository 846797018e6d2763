using System.Net;

namespace ParamDb.Server.Cli;

/// <summary>
/// A request body streamed from a file (never read whole into memory) with a <see cref="ProgressBar"/>, and its
/// length declared, so the node can refuse a file over its limit before any of it is sent.
/// </summary>
/// <param name="source">A seekable stream, e.g. the file; the content reads it from the start.</param>
/// <param name="bar">Advanced as the bytes go out, and completed once all have.</param>
/// <param name="sentNote">Printed under the bar once everything is sent: what the node does next.</param>
public sealed class ProgressContent(Stream source, ProgressBar bar, string? sentNote = null) : HttpContent
{
    /// <inheritdoc />
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    /// <inheritdoc />
    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        source.Position = 0;   // a resend (after a redirect) starts over
        await bar.CopyAsync(source, stream, cancellationToken).ConfigureAwait(false);
        bar.Complete(sentNote);
    }

    /// <inheritdoc />
    protected override bool TryComputeLength(out long length)
    {
        length = source.Length;
        return true;
    }
}
