using System.Buffers.Binary;
using System.Text;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>A node with a 1 MiB body limit (so bombs and oversized frames stay small) and two tables.</summary>
public sealed class StreamLimitServer : IAsyncLifetime
{
    public const string Table = "mal";       // dim 2
    public const string Bounded = "mal-max"; // dim 2, maxKey 100
    public const int MaxBody = 1 << 20;

    public RunningServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await RunningServer.StartAsync(null, "--max-body-size", "1m");
        using var http = Server.CreateClient();
        await Wire.CreateTableAsync(http, Table, """{"dim":2}""");
        await Wire.CreateTableAsync(http, Bounded, """{"dim":2,"maxKey":100}""");
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Malformed frames (docs/streaming.md): each is answered under its id with the status and code REST would give,
/// and the same stream then serves a good frame; frames that cannot be delimited end the stream with id 0.
/// </summary>
public sealed class StreamMalformedTests(StreamLimitServer fixture) : IClassFixture<StreamLimitServer>
{
    private const string T = StreamLimitServer.Table;
    private const ulong Id = 77;

    private static byte[] Pull() => StreamFrames.Pull(Id, T, [1, 2]);

    private static byte[] With(byte[] frame, Action<byte[]> change)
    {
        change(frame);
        return frame;
    }

    private static byte[] Lz4Frame(StreamOp op, byte[] lz4Payload)
    {
        var frame = StreamFrames.Frame(Id, op, T, lz4Payload);
        frame[13] = (byte)StreamFrameFlags.Lz4;
        return frame;
    }

    private static byte[] RawName(byte[] name) =>
        StreamFrames.Concat(Header(name, Wire.PullBlock([1]).Length), name, new byte[StreamRequestHeader.Pad8(name.Length) - name.Length], Wire.PullBlock([1]));

    private static byte[] Header(byte[] name, int payload)
    {
        var header = new byte[StreamRequestHeader.Size];
        int offset = StreamRequestHeader.Size + StreamRequestHeader.Pad8(name.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)(offset - 4 + payload));
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(4), Id);
        header[12] = (byte)StreamOp.Pull;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(14), (ushort)name.Length);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(20), -1);
        return header;
    }

    /// <summary>name, frame, the id the error comes back under, status, code.</summary>
    public static TheoryData<string, byte[], ulong, int, string> Cases() => new()
    {
        { "op 9", With(Pull(), f => f[12] = 9), Id, 400, ProblemCodes.BadFrame },
        { "op 0", With(Pull(), f => f[12] = 0), Id, 400, ProblemCodes.BadFrame },
        { "unknown flag bit2", With(Pull(), f => f[13] = 4), Id, 400, ProblemCodes.BadFrame },   // bit1 is the ring epoch
        { "staleness -2", With(Pull(), f => BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(20), -2)), Id, 400, ProblemCodes.BadFrame },
        { "name length 0", StreamFrames.Frame(Id, StreamOp.Pull, "", Wire.PullBlock([1])), Id, 400, ProblemCodes.InvalidTableName },
        { "name length 129", StreamFrames.Frame(Id, StreamOp.Pull, new string('a', 129), Wire.PullBlock([1])), Id, 400, ProblemCodes.InvalidTableName },
        { "name with a slash", StreamFrames.Pull(Id, "../etc", [1]), Id, 400, ProblemCodes.InvalidTableName },
        { "name not UTF-8", RawName([0x6D, 0xFF, 0xFE]), Id, 400, ProblemCodes.InvalidTableName },
        { "name padding not zero", With(Pull(), f => f[StreamRequestHeader.Size + T.Length + 1] = 1), Id, 400, ProblemCodes.BadFrame },
        { "length 8: the id and nothing else", With(new byte[12], f => { f[0] = 8; f[4] = (byte)Id; }), Id, 400, ProblemCodes.BadFrame },
        { "length ends inside the name", With(Pull()[..(StreamRequestHeader.Size + 8)], f => BinaryPrimitives.WriteUInt32LittleEndian(f, StreamRequestHeader.Size + 4)), Id, 400, ProblemCodes.BadFrame },
        { "request id 0", StreamFrames.Pull(0, T, [1]), 0, 400, ProblemCodes.BadFrame },
        { "tick with a KV block", StreamFrames.Frame(Id, StreamOp.Tick, T, Wire.PullBlock([1])), Id, 400, ProblemCodes.BadFrame },
        { "push without a KV block", StreamFrames.Frame(Id, StreamOp.Push, T, []), Id, 400, ProblemCodes.BadFrame },
        { "pull without a KV block", StreamFrames.Frame(Id, StreamOp.Pull, T, []), Id, 400, ProblemCodes.BadFrame },
        { "KV block with bad magic", With(Pull(), f => f[StreamRequestHeader.Size + 8] = (byte)'X'), Id, 400, ProblemCodes.BadMagic },
        { "KV block one byte short", StreamFrames.Frame(Id, StreamOp.Pull, T, Wire.PullBlock([1])[..^1]), Id, 400, ProblemCodes.Truncated },
        { "push block without VALUES", StreamFrames.Frame(Id, StreamOp.Push, T, Wire.PullBlock([1])), Id, 400, ProblemCodes.BadFlags },
        { "unsorted keys", StreamFrames.Pull(Id, T, [5, 1]), Id, 400, ProblemCodes.UnsortedKeys },
        { "unknown table", StreamFrames.Pull(Id, "no-such-table", [1]), Id, 404, ProblemCodes.TableNotFound },
        { "wrong dim", StreamFrames.Push(Id, T, [1], [1, 2, 3], dim: 3), Id, 400, ProblemCodes.DimMismatch },
        { "key past maxKey", StreamFrames.Pull(Id, StreamLimitServer.Bounded, [100]), Id, 400, ProblemCodes.KeyOutOfRange },
        { "clock without a worker", StreamFrames.Push(Id, T, [1], [1, 1], 2, worker: 0, clock: 5), Id, 400, ProblemCodes.BadHeader },
        { "pull whose reply passes the body limit", StreamFrames.PullRange(Id, T, 0, StreamLimitServer.MaxBody / 8), Id, 413, ProblemCodes.TooManyKeys },
        { "LZ4 flag on plain bytes", Lz4Frame(StreamOp.Pull, Wire.PullBlock([1])), Id, 400, ProblemCodes.BadCompression },
        { "LZ4 frame cut short", Lz4Frame(StreamOp.Pull, Wire.Lz4(Wire.PullBlock([1, 2, 3]))[..^6]), Id, 400, ProblemCodes.BadCompression },
        { "LZ4 bomb (2 MiB of zeros)", Lz4Frame(StreamOp.Push, Wire.Lz4(new byte[2 * StreamLimitServer.MaxBody])), Id, 413, ProblemCodes.BodyTooLarge },
        { "KV block past the body limit", StreamFrames.Frame(Id, StreamOp.Pull, T, new byte[StreamLimitServer.MaxBody + 8]), Id, 413, ProblemCodes.BodyTooLarge },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task MalformedFrameIsAnsweredAndTheStreamGoesOn(string name, byte[] frame, ulong id, int status, string code)
    {
        await using var stream = await StreamClient.OpenAsync(fixture.Server);

        await stream.SendAsync(frame, StreamFrames.Pull(1000, T, [3]));

        var error = await stream.ReadOneAsync();
        Assert.True(error.Id == id, $"{name}: error came back under id {error.Id}");
        error.AssertProblem(status, code);
        var good = await stream.ReadOneAsync();
        Assert.Equal(1000UL, good.Id);
        Assert.Equal((float[])[0, 0], good.Values([3]));
    }

    [Fact]
    public async Task FrameTooShortToCarryAnIdEndsTheStreamWithAnId0Error()
    {
        await using var stream = await StreamClient.OpenAsync(fixture.Server);

        await stream.SendAsync(StreamFrames.Pull(1, T, [1]), [4, 0, 0, 0, 1, 2, 3, 4], StreamFrames.Pull(3, T, [1]));

        Assert.Equal(1UL, (await stream.ReadOneAsync()).Id);
        var fatal = await stream.ReadOneAsync();
        Assert.Equal(0UL, fatal.Id);
        Assert.Contains("too short to carry a request id", fatal.AssertProblem(400, ProblemCodes.BadFrame));
        Assert.Null(await stream.ReadAsync()); // frame 3 is never answered: the stream ended
    }

    [Fact]
    public async Task AClientThatKeepsSendingAfterAnId0ErrorStillSeesTheResponseEnd()
    {
        await using var stream = await StreamClient.OpenAsync(fixture.Server);
        stream.EndRequestsOnId0 = false;

        await stream.SendAsync([4, 0, 0, 0, 1, 2, 3, 4]);
        Assert.Equal(0UL, (await stream.ReadOneAsync()).Id);
        // The server discards what follows and, after its grace for the client to end the body, ends the response.
        await stream.SendAsync(StreamFrames.Pull(2, T, [1]));
        Assert.Null(await stream.ReadAsync());
    }

    [Fact]
    public async Task BodyEndingBeforeAFramesIdEndsTheStreamWithAnId0Error()
    {
        await using var stream = await StreamClient.OpenAsync(fixture.Server);

        await stream.SendAsync(Pull()[..10]);
        stream.CompleteRequests();

        var fatal = await stream.ReadOneAsync();
        Assert.Equal(0UL, fatal.Id);
        fatal.AssertProblem(400, ProblemCodes.BadFrame);
        Assert.Null(await stream.ReadAsync());
    }

    [Fact]
    public async Task BodyEndingInsideAFramesKvBlockAnswersTruncatedUnderItsIdThenEnds()
    {
        await using var stream = await StreamClient.OpenAsync(fixture.Server);

        byte[] frame = Pull();
        await stream.SendAsync(frame[..^8]);
        stream.CompleteRequests();

        var reply = await stream.ReadOneAsync();
        Assert.Equal(Id, reply.Id);
        reply.AssertProblem(400, ProblemCodes.Truncated);
        Assert.Null(await stream.ReadAsync());
    }

    [Fact]
    public async Task FramesSplitAtEveryByteAreReassembled()
    {
        await using var stream = await StreamClient.OpenAsync(fixture.Server);
        byte[] bytes = StreamFrames.Concat(StreamFrames.Push(1, T, [40, 41], [1, 2, 3, 4], 2), StreamFrames.Pull(2, T, [40, 41]));

        using (var deadline = new CancellationTokenSource(StreamClient.Deadline))
            for (int i = 0; i < bytes.Length; i++) await stream.SendRawAsync(bytes.AsMemory(i, 1), deadline.Token);

        Assert.Equal((2L, 2L), (await stream.ReadOneAsync()).Ack());
        Assert.Equal((float[])[1, 2, 3, 4], (await stream.ReadOneAsync()).Values([40, 41]));
    }

    [Fact]
    public async Task ErrorRepliesCarryProblemDetailsJson()
    {
        await using var stream = await StreamClient.OpenAsync(fixture.Server);

        await stream.SendAsync(StreamFrames.Pull(5, "no-such-table", [1]));

        var reply = await stream.ReadOneAsync();
        var json = Encoding.UTF8.GetString(reply.Payload);
        Assert.Contains("\"title\":\"Table not found\"", json);
        Assert.Contains("PUT /v1/tables/no-such-table", reply.AssertProblem(404, ProblemCodes.TableNotFound));
        Assert.Equal(StreamFrameFlags.None, reply.Header.Flags);
    }
}
