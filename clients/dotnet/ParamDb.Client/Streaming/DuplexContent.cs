using System.Net;
using System.Net.Http.Headers;
using ParamDb.Protocol;
using ParamDb.Client.Internal;

namespace ParamDb.Client.Streaming;

/// <summary>
/// The body of the long <c>POST /v1/stream</c>: hands the HTTP/2 request stream to the writer loop and keeps the
/// body open until <see cref="Complete"/> (END_STREAM) or <see cref="Abort"/> (the stream is reset).
/// </summary>
internal sealed class DuplexContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DuplexContent() => Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.Stream);

    /// <summary>Completes with the request stream once HttpClient starts sending the body.</summary>
    public Task<Stream> RequestStream => _stream.Task;

    /// <summary>Ends the body normally: the server sees END_STREAM after the last frame.</summary>
    public void Complete() => _done.TrySetResult();

    /// <summary>Ends the body with an error, which resets the HTTP/2 stream.</summary>
    public void Abort(Exception reason)
    {
        _stream.TrySetException(reason);
        _done.TrySetException(reason);
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        _stream.TrySetResult(stream);
        await _done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
