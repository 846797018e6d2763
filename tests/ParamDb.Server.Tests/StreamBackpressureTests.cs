using ParamDb.Server.Streaming;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>A client that sends without reading: the server's memory for it stays bounded, and nothing is lost.</summary>
public sealed class StreamBackpressureTests
{
    [Fact]
    public async Task NonReadingClientStopsTheReaderAtTheReplyBudgetAndEveryReplyArrivesOnceItReads()
    {
        const int budget = 256 * 1024, frames = 2000, dim = 8, keysPerPull = 1024;
        await using var server = await RunningServer.StartAsync(null, "--stream-buffer", "256k");
        using var http = server.CreateClient();
        var table = ServerFixture.NewTable("bp");
        await Wire.CreateTableAsync(http, table, $$"""{"dim":{{dim}}}""");
        using var counters = new StreamCounters(server);
        var keys = Enumerable.Range(0, keysPerPull).Select(i => (ulong)i).ToArray();
        await using var stream = await StreamClient.OpenAsync(server);

        // 2,000 pulls of 8 KiB each (16 MiB, twice the 8 MiB HTTP/2 stream window) asking for ~40 KiB replies
        // each (80 MiB), and nobody reading the replies.
        var sending = Task.Run(async () =>
        {
            for (int i = 0; i < frames; i += 50)
                await stream.SendAsync(Enumerable.Range(i + 1, 50).Select(id => StreamFrames.Pull((ulong)id, table, keys)).ToArray());
        });

        await counters.WaitUntilAsync(c => c[StreamMetrics.Names.ReadersPaused] == 1, "the stream's reader stopped for a full reply queue");
        long read = counters[StreamMetrics.Names.Frames];
        Assert.True(read < frames / 2, $"the server read {read} frames although its replies were not read");
        Assert.False(sending.IsCompleted, "the client sent 16 MiB into a stream the server had stopped reading");
        Assert.True(counters[StreamMetrics.Names.QueuedBytesPeak] <= budget, $"queued {counters[StreamMetrics.Names.QueuedBytesPeak]} bytes, over the {budget}-byte budget");

        // Reading resumes the stream: every pull is answered, once, with its rows.
        var seen = new HashSet<ulong>();
        while (seen.Count < frames)
        {
            var reply = await stream.ReadOneAsync();
            Assert.True(seen.Add(reply.Id), $"request {reply.Id} answered twice");
            Assert.Equal(keysPerPull * dim, reply.Values(keys).Length);
        }
        await sending;
        Assert.True(counters[StreamMetrics.Names.QueuedBytesPeak] <= budget);
        Assert.Equal(frames, counters[StreamMetrics.Names.Frames]);
    }
}
