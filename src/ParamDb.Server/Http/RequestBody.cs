using System.Buffers;
using System.IO.Pipelines;
using K4os.Compression.LZ4.Streams;
using Microsoft.AspNetCore.Http.Features;
using ParamDb.Protocol;

namespace ParamDb.Server.Http;

/// <summary>
/// Reads a whole request body into one pooled buffer, inflating <c>Content-Encoding: lz4</c> (LZ4 frame
/// format) on the way. Both the bytes on the wire and the inflated bytes are bounded by the same limit,
/// and inflation stops at the limit, so a decompression bomb costs at most that much memory.
/// </summary>
public static class RequestBody
{
    /// <summary>Reads the body; on failure the buffer is null and the error says why.</summary>
    public static async ValueTask<(PooledBuffer? Body, ProtocolError Error)> ReadAsync(HttpRequest request, long maxBytes, CancellationToken ct)
    {
        var encoding = request.Headers.ContentEncoding.ToString();
        bool lz4;
        if (encoding.Length == 0 || encoding.Equals("identity", StringComparison.OrdinalIgnoreCase)) lz4 = false;
        else if (encoding.Equals(MediaTypes.Lz4Encoding, StringComparison.OrdinalIgnoreCase)) lz4 = true;
        else return (null, new ProtocolError(415, ProblemCodes.UnsupportedMediaType, $"Content-Encoding '{encoding}' is not supported; send the body as is or with Content-Encoding: lz4 (LZ4 frame format)."));

        long? declared = request.ContentLength;
        if (declared > maxBytes)
            return (null, TooLarge($"The body is {declared} bytes; this server accepts at most {maxBytes} (--max-body-size)."));

        // Kestrel's own limit is the same number; lift it here so our check, with its clearer reply, runs first.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = null;

        var buffer = new PooledBuffer(lz4 ? 64 * 1024 : (int)(declared ?? 64 * 1024));
        try
        {
            ProtocolError error;
            if (lz4)
            {
                // The decoder reads the wire through a counting stream, so the compressed size is bounded as well.
                var wire = new BoundedReadStream(request.Body, maxBytes);
                try
                {
                    await using var decoder = LZ4Stream.Decode(wire, leaveOpen: true);
                    error = await FillAsync(decoder, buffer, maxBytes, "decompressed ", ct);
                }
                catch (EndOfStreamException)
                {
                    error = new ProtocolError(400, ProblemCodes.BadCompression, "The LZ4 frame ends early: the compressed body is truncated.");
                }
                catch (Exception e) when (Lz4Input.IsCorrupt(e))
                {
                    error = new ProtocolError(400, ProblemCodes.BadCompression, $"The body is not a valid LZ4 frame: {e.Message}");
                }
                if (error.IsNone && wire.Exceeded)
                    error = TooLarge($"The compressed body exceeds {maxBytes} bytes (--max-body-size).");
            }
            else
            {
                error = await FillAsync(request.BodyReader, buffer, maxBytes, ct);
            }
            if (!error.IsNone)
            {
                buffer.Dispose();
                return (null, error);
            }
            return (buffer, default);
        }
        catch (BadHttpRequestException e)
        {
            buffer.Dispose();
            return (null, e.StatusCode == 413
                ? TooLarge($"The body exceeds {maxBytes} bytes (--max-body-size).")
                : new ProtocolError(e.StatusCode, ProblemCodes.BadRequest, e.Message));
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    private static async ValueTask<ProtocolError> FillAsync(Stream source, PooledBuffer buffer, long maxBytes, string what, CancellationToken ct)
    {
        while (true)
        {
            int end = (int)Math.Min(buffer.Capacity, maxBytes);
            if (buffer.Length == end)
            {
                if (end >= maxBytes)
                {
                    // One byte more than allowed proves the body is too large without inflating the rest.
                    var probe = new byte[1];
                    if (await source.ReadAsync(probe, ct) == 0) return default;
                    return TooLarge($"The {what}body exceeds {maxBytes} bytes (--max-body-size); it was not inflated further.");
                }
                buffer.EnsureCapacity((int)Math.Min(maxBytes, (long)buffer.Capacity * 2));
                continue;
            }
            int read = await source.ReadAsync(buffer.Array.AsMemory(buffer.Length, end - buffer.Length), ct);
            if (read == 0) return default;
            buffer.Length += read;
        }
    }

    /// <summary>
    /// Copies the body from Kestrel's pipe straight into the pooled buffer: one copy, no stream adapter, and
    /// every segment Kestrel already holds is taken in one read.
    /// </summary>
    private static async ValueTask<ProtocolError> FillAsync(PipeReader reader, PooledBuffer buffer, long maxBytes, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var data = result.Buffer;
            long total = buffer.Length + data.Length;
            if (total > maxBytes)
            {
                reader.AdvanceTo(data.End);
                return TooLarge($"The body exceeds {maxBytes} bytes (--max-body-size).");
            }
            if (total > buffer.Capacity) buffer.EnsureCapacity((int)Math.Min(maxBytes, Math.Max(total, (long)buffer.Capacity * 2)));
            data.CopyTo(buffer.Array.AsSpan(buffer.Length));
            buffer.Length = (int)total;
            reader.AdvanceTo(data.End);
            if (result.IsCompleted) return default;
        }
    }

    private static ProtocolError TooLarge(string detail) => new(413, ProblemCodes.BodyTooLarge, detail);

    /// <summary>A read-only view of a stream that stops (reports end) once more than a limit was read.</summary>
    private sealed class BoundedReadStream(Stream inner, long limit) : Stream
    {
        private long _read;

        public bool Exceeded => _read > limit;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            if (Exceeded) return 0;
            int n = await inner.ReadAsync(destination, cancellationToken);
            _read += n;
            return Exceeded ? 0 : n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Synchronous reads of the request body are not allowed.");
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
