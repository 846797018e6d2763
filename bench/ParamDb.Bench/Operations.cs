using System.Net;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ParamDb.Client;
using ParamDb.Protocol;

namespace ParamDb.Bench;

/// <summary>
/// One request loop's operation. Each loop owns its instance, so buffers are reused without locks and
/// nothing large is allocated per request.
/// </summary>
internal abstract class BenchOp
{
    /// <summary>Sends one request and consumes its reply; throws on anything but success.</summary>
    public abstract Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>How raw requests reach the server: one shared HTTP client, version and compression.</summary>
internal sealed class RawTransport(HttpClient http, Version version, bool lz4)
{
    public bool Lz4 => lz4;

    /// <summary>A request body as sent: the KV block, LZ4-framed once up front when compression is on.</summary>
    public byte[] Encode(byte[] block)
    {
        if (!lz4) return block;
        var writer = new ArrayBufferWriter(block.Length + 1024);
        LZ4Frame.Encode(block.AsSpan(), writer, LZ4Level.L00_FAST);
        return writer.ToArray();
    }

    public HttpRequestMessage Request(Uri uri, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", MediaTypes.KvBlock);
        if (lz4) content.Headers.TryAddWithoutValidation("Content-Encoding", MediaTypes.Lz4Encoding);
        return new HttpRequestMessage(HttpMethod.Post, uri) { Content = content, Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
    }

    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    public static async Task EnsureOkAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.StatusCode == HttpStatusCode.OK) return;
        string body = await response.Content.ReadAsStringAsync(cancellationToken);
        throw new InvalidOperationException($"The server answered {(int)response.StatusCode}: {body}");
    }

    /// <summary>A minimal growable buffer writer for the one-off LZ4 encoding of request bodies.</summary>
    private sealed class ArrayBufferWriter(int capacity) : System.Buffers.IBufferWriter<byte>
    {
        private byte[] _buffer = new byte[capacity];
        private int _written;

        public void Advance(int count) => _written += count;
        public Memory<byte> GetMemory(int sizeHint = 0) { Ensure(sizeHint); return _buffer.AsMemory(_written); }
        public Span<byte> GetSpan(int sizeHint = 0) { Ensure(sizeHint); return _buffer.AsSpan(_written); }
        public byte[] ToArray() => _buffer[.._written];

        private void Ensure(int hint)
        {
            if (_written + Math.Max(hint, 1) > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _written + hint));
        }
    }
}

/// <summary>Push of prebuilt bodies, rotating through them.</summary>
internal sealed class RawPush(RawTransport transport, Uri uri, byte[][] bodies) : BenchOp
{
    private int _next;

    public override async Task RunAsync(CancellationToken cancellationToken)
    {
        using var request = transport.Request(uri, bodies[_next++ % bodies.Length]);
        using var response = await transport.SendAsync(request, cancellationToken);
        await RawTransport.EnsureOkAsync(response, cancellationToken);
        // The reply is a few bytes of JSON ({"rows":n,"applied":m}); read it so the connection is reusable.
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        await body.CopyToAsync(Stream.Null, cancellationToken);
    }
}

/// <summary>Pull of prebuilt request bodies; the reply is read into one reused buffer and its length checked.</summary>
internal sealed class RawPull(RawTransport transport, Uri uri, byte[][] bodies, int replyLength) : BenchOp
{
    private static readonly LZ4DecoderSettings Decoder = new();
    private readonly byte[] _reply = new byte[replyLength + 1];
    private int _next;

    public override async Task RunAsync(CancellationToken cancellationToken)
    {
        using var request = transport.Request(uri, bodies[_next++ % bodies.Length]);
        request.Headers.TryAddWithoutValidation("Accept", MediaTypes.KvBlock);
        if (transport.Lz4) request.Headers.TryAddWithoutValidation("Accept-Encoding", MediaTypes.Lz4Encoding);
        using var response = await transport.SendAsync(request, cancellationToken);
        await RawTransport.EnsureOkAsync(response, cancellationToken);
        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken);
        if (response.Content.Headers.ContentEncoding.Count > 0) body = LZ4Stream.Decode(body, Decoder, leaveOpen: false);
        await using (body)
        {
            int total = 0, read;
            while (total < _reply.Length && (read = await body.ReadAsync(_reply.AsMemory(total), cancellationToken)) > 0) total += read;
            if (total != replyLength)
                throw new InvalidOperationException($"A pull reply was {total} bytes; {replyLength} were expected.");
        }
    }
}

/// <summary>
/// Push through <see cref="ParamDbClient"/>: it builds (and with LZ4 compresses) every body itself. With several
/// clients (<c>--shards</c>: independent nodes, no cluster) each request is cut into contiguous key ranges, one
/// per client, sent at once.
/// </summary>
internal sealed class ClientPush(ParamDbClient[] dbs, string table, ulong[][] keySets, ulong? first, float[] values, int dim, ulong keySpace) : BenchOp
{
    private readonly int[][] _cuts = Shards.Cuts(keySets, first, values.Length / dim, keySpace, dbs.Length);
    private readonly Task[] _sends = new Task[dbs.Length];
    private int _next;

    public override Task RunAsync(CancellationToken cancellationToken)
    {
        int set = _next++ % keySets.Length;
        if (dbs.Length == 1) return Send(dbs[0], set, 0, values.Length / dim, cancellationToken);
        int[] cuts = _cuts[set];
        for (int s = 0; s < dbs.Length; s++) _sends[s] = cuts[s] == cuts[s + 1] ? Task.CompletedTask : Send(dbs[s], set, cuts[s], cuts[s + 1], cancellationToken);
        return Task.WhenAll(_sends);
    }

    private Task Send(ParamDbClient db, int set, int from, int to, CancellationToken cancellationToken) => first is { } f
        ? db.PushRangeAsync(table, f + (ulong)from, values.AsMemory(from * dim, (to - from) * dim), dim, cancellationToken)
        : db.PushAsync(table, keySets[set].AsMemory(from, to - from), values.AsMemory(from * dim, (to - from) * dim), cancellationToken);
}

/// <summary>Pull through <see cref="ParamDbClient"/> into one reused destination, cut like <see cref="ClientPush"/>.</summary>
internal sealed class ClientPull(ParamDbClient[] dbs, string table, ulong[][] keySets, ulong? first, int count, int dim, ulong keySpace) : BenchOp
{
    private readonly float[] _destination = new float[count * dim];
    private readonly int[][] _cuts = Shards.Cuts(keySets, first, count, keySpace, dbs.Length);
    private readonly Task[] _sends = new Task[dbs.Length];
    private int _next;

    public override Task RunAsync(CancellationToken cancellationToken)
    {
        int set = _next++ % keySets.Length;
        if (dbs.Length == 1) return Send(dbs[0], set, 0, count, cancellationToken);
        int[] cuts = _cuts[set];
        for (int s = 0; s < dbs.Length; s++) _sends[s] = cuts[s] == cuts[s + 1] ? Task.CompletedTask : Send(dbs[s], set, cuts[s], cuts[s + 1], cancellationToken);
        return Task.WhenAll(_sends);
    }

    private Task Send(ParamDbClient db, int set, int from, int to, CancellationToken cancellationToken) => first is { } f
        ? db.PullRangeAsync(table, f + (ulong)from, to - from, _destination.AsMemory(from * dim, (to - from) * dim), cancellationToken)
        : db.PullAsync(table, keySets[set].AsMemory(from, to - from), _destination.AsMemory(from * dim, (to - from) * dim), cancellationToken);
}

/// <summary>Where <c>--shards</c> cuts a request: shard s takes the keys in [space·s/n, space·(s+1)/n).</summary>
internal static class Shards
{
    /// <summary>For each key set, n+1 row offsets: shard s sends rows cuts[s] … cuts[s+1]-1.</summary>
    public static int[][] Cuts(ulong[][] keySets, ulong? first, int count, ulong keySpace, int n)
    {
        var cuts = new int[keySets.Length][];
        for (int k = 0; k < keySets.Length; k++)
        {
            cuts[k] = new int[n + 1];
            for (int s = 1; s <= n; s++)
            {
                if (first is not null || s == n) { cuts[k][s] = (int)((long)count * s / n); continue; }
                ulong bound = (ulong)((UInt128)keySpace * (ulong)s / (ulong)n);
                int at = Array.BinarySearch(keySets[k], bound);
                cuts[k][s] = at >= 0 ? at : ~at;
            }
        }
        return cuts;
    }
}
