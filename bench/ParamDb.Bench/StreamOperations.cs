using ParamDb.Client;
using ParamDb.Protocol.Stream;

namespace ParamDb.Bench;

/// <summary>
/// The request loops of stream mode: <c>--connections</c> streams, each with <c>--in-flight</c> loops sharing it.
/// Raw mode sends prebuilt frames through <see cref="StreamTransport"/>; <c>--client</c> goes through
/// <see cref="ParamDbStream"/>, which builds every frame itself.
/// </summary>
internal sealed class StreamLoops : IAsyncDisposable
{
    private readonly StreamTransport[] _raw;
    private readonly ParamDbStream[] _clients;

    private StreamLoops(int inFlight, StreamTransport[] raw, ParamDbStream[] clients)
    {
        InFlight = inFlight;
        _raw = raw;
        _clients = clients;
    }

    /// <summary>Loops per stream.</summary>
    public int InFlight { get; }

    /// <summary>All loops: streams × in flight.</summary>
    public int Count => InFlight * Math.Max(_raw.Length, _clients.Length);

    public static async Task<StreamLoops> OpenAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        var raw = new StreamTransport[options.ViaClient ? 0 : options.Connections];
        var clients = new ParamDbStream[options.ViaClient ? options.Connections : 0];
        for (int i = 0; i < raw.Length; i++) raw[i] = await StreamTransport.OpenAsync(options.Url, options.InFlight, cancellationToken);
        for (int i = 0; i < clients.Length; i++)
        {
            clients[i] = await ParamDbStream.ConnectAsync(options.Url, new ParamDbStreamOptions { MaxInFlight = options.InFlight }, cancellationToken);
        }
        return new StreamLoops(options.InFlight, raw, clients);
    }

    /// <summary>Which stream a loop uses; loops of one stream share its key sets.</summary>
    public int StreamOf(int loop) => loop / InFlight;

    /// <summary>A push loop: one of <paramref name="blocks"/> (KV blocks with values, one per key set) per request.</summary>
    public BenchOp Push(int loop, string table, ulong[][] keySets, ulong? first, float[] values, int dim, byte[][] blocks)
    {
        int stream = StreamOf(loop), slot = loop % InFlight;
        if (_clients.Length > 0) return new ClientStreamPush(_clients[stream], table, keySets, first, values, dim, slot);
        return new RawStreamRequest(_raw[stream], slot, Headers(slot, StreamOp.Push, table, blocks), blocks, StreamReplyHeader.PushPayloadSize);
    }

    /// <summary>A pull loop: one of <paramref name="blocks"/> (KV blocks without values) per request.</summary>
    public BenchOp Pull(int loop, string table, ulong[][] keySets, ulong? first, int count, int dim, byte[][] blocks, int replyLength)
    {
        int stream = StreamOf(loop), slot = loop % InFlight;
        if (_clients.Length > 0) return new ClientStreamPull(_clients[stream], table, keySets, first, count, dim, slot);
        return new RawStreamRequest(_raw[stream], slot, Headers(slot, StreamOp.Pull, table, blocks), blocks, replyLength);
    }

    private static byte[][] Headers(int slot, StreamOp op, string table, byte[][] blocks)
    {
        byte[] name = System.Text.Encoding.UTF8.GetBytes(table);
        var headers = new byte[blocks.Length][];
        for (int i = 0; i < blocks.Length; i++) headers[i] = StreamTransport.Header(slot, op, name, blocks[i].Length);
        return headers;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (StreamTransport t in _raw) await t.DisposeAsync();
        foreach (ParamDbStream c in _clients) await c.DisposeAsync();
    }
}

/// <summary>A prebuilt frame per request (rotating through the key sets); the reply's payload length is checked.</summary>
internal sealed class RawStreamRequest(StreamTransport stream, int slot, byte[][] headers, byte[][] payloads, long replyLength) : BenchOp
{
    private int _next;

    public override async Task RunAsync(CancellationToken cancellationToken)
    {
        int i = _next++ % headers.Length;
        long got = await stream.SendAsync(slot, headers[i], payloads[i]);
        if (got != replyLength) throw new InvalidOperationException($"A reply carried {got} payload bytes; {replyLength} were expected.");
    }
}

/// <summary>Push through <see cref="ParamDbStream"/>, which frames every request itself.</summary>
internal sealed class ClientStreamPush(ParamDbStream stream, string table, ulong[][] keySets, ulong? first, float[] values, int dim, int start) : BenchOp
{
    private int _next = start;

    public override async Task RunAsync(CancellationToken cancellationToken)
    {
        if (first is { } f) await stream.PushRangeAsync(table, f, values, dim, cancellationToken: cancellationToken);
        else await stream.PushAsync(table, keySets[_next++ % keySets.Length], values, cancellationToken: cancellationToken);
    }
}

/// <summary>Pull through <see cref="ParamDbStream"/> into one reused destination per loop.</summary>
internal sealed class ClientStreamPull(ParamDbStream stream, string table, ulong[][] keySets, ulong? first, int count, int dim, int start) : BenchOp
{
    private readonly float[] _destination = new float[count * dim];
    private int _next = start;

    public override async Task RunAsync(CancellationToken cancellationToken)
    {
        if (first is { } f) await stream.PullRangeAsync(table, f, count, _destination, cancellationToken: cancellationToken);
        else await stream.PullAsync(table, keySets[_next++ % keySets.Length], _destination, cancellationToken: cancellationToken);
    }
}
