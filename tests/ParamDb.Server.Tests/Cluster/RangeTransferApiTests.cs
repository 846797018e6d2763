using System.Net;
using System.Net.Http.Json;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage.Transfer;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Whole-record transfer between real nodes: a range copied from its primary to another node over the peer routes,
/// held there without being served or exported, and dropped again; every refusal changes nothing.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RangeTransferApiTests : IAsyncLifetime
{
    private LocalCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await LocalCluster.StartAsync(3, "--replicas", "1");   // the routes alone: no copies of replication's own

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static HttpRequestMessage Peer(HttpMethod method, string path, HttpContent? content = null) =>
        new(method, path) { Content = content, Headers = { { PeerHttp.PeerHeader, "n1" } } };

    private static ulong[] KeysIn(byte[] batch) =>
        RecordBatch.TryParse(batch, out RecordBatch parsed, out string error) ? parsed.Keys.ToArray() : throw new InvalidDataException(error);

    private static int RecordsIn(byte[] batch) => KeysIn(batch).Length;

    private static ByteArrayContent Records(byte[] bytes) => new(bytes) { Headers = { { "Content-Type", MediaTypes.Records } } };

    [Fact]
    public async Task ARangeCopiedToAnotherNodeIsHeldThereNotServedNorExportedAndCanBeDropped()
    {
        using HttpClient n1 = _cluster.Client(1), n2 = _cluster.Client(2), n3 = _cluster.Client(3);
        await Wire.CreateTableAsync(n1, "t", """{"dim":2,"updater":{"kind":"adagrad","lr":0.1}}""");
        ulong[] keys = [.. Enumerable.Range(0, 3000).Select(i => (ulong)i << 12)];   // one per block: every range has some
        await Wire.PushAsync(n1, "t", keys, Wire.Fill(2 * keys.Length, 1f), 2);
        byte[] export = await n1.GetByteArrayAsync("v1/tables/t/export");

        // n2's biggest range.
        ClusterView view = await _cluster.ViewAsync(1);
        var ring = new ClusterRing(view.Epoch, view.Replicas, view.VirtualNodes,
            view.Nodes.Select(n => KeyValuePair.Create(n.Id, new Ring(n.Tokens.Select(t => ulong.Parse(t, System.Globalization.CultureInfo.InvariantCulture))))));
        ulong tableHash = Ring.NameHash("t");
        int n2Index = ring.NodeIndex("n2");
        var byToken = keys.Where(k => ring.PrimaryOf(tableHash, k) == n2Index).GroupBy(k => ring.Tokens[ring.RangeOf(Ring.Position(tableHash, k))]).MaxBy(g => g.Count())!;
        ulong token = byToken.Key;
        long n3Before = await _cluster.OwnRowsAsync(3, "t");

        using var copy = await n2.SendAsync(Peer(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records"));
        Assert.Equal(HttpStatusCode.OK, copy.StatusCode);
        Assert.Equal(MediaTypes.Records, copy.Content.Headers.ContentType?.MediaType);
        byte[] batches = await copy.Content.ReadAsByteArrayAsync();
        Assert.Equal(byToken.Order().ToArray(), KeysIn(batches));   // one range fits in one 4 MiB batch

        using var applied = await n3.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/records", Records(batches)));
        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        Assert.Equal(new RecordsApplied(1, byToken.Count()), await applied.Content.ReadFromJsonAsync(ProtocolJson.Default.RecordsApplied));
        // Held there: n3 gives the same copy back, and its own row count (the rows it serves) leaves it out.
        using (var back = await n3.SendAsync(Peer(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records")))
            Assert.Equal(byToken.Order().ToArray(), KeysIn(await back.Content.ReadAsByteArrayAsync()));
        Assert.Equal(n3Before, await _cluster.OwnRowsAsync(3, "t"));
        // Held, not served: the cluster's export is unchanged (no key twice), and after another push a pull through
        // n3 reads n2's new rows, not its own stale copy.
        Assert.Equal(export, await n1.GetByteArrayAsync("v1/tables/t/export"));
        ulong[] copied = [.. byToken.Order()];
        float[] held = await Wire.PullAsync(n2, "t", copied);
        await Wire.PushAsync(n1, "t", copied, Wire.Fill(2 * copied.Length, 1f), 2);
        float[] now = await Wire.PullAsync(n2, "t", copied);
        Assert.NotEqual(held, now);
        Assert.Equal(now, await Wire.PullAsync(n3, "t", copied));
        export = await n1.GetByteArrayAsync("v1/tables/t/export");

        // The primary refuses to drop what it serves; the holder drops its copy.
        using var refused = await n2.SendAsync(Peer(HttpMethod.Delete, $"v1/tables/t/ranges/{token}"));
        await Wire.AssertProblemAsync(refused, 409, ProblemCodes.RangeServed);
        using var dropped = await n3.SendAsync(Peer(HttpMethod.Delete, $"v1/tables/t/ranges/{token}"));
        Assert.Equal(new RangeDropped(byToken.Count()), await dropped.Content.ReadFromJsonAsync(ProtocolJson.Default.RangeDropped));
        Assert.Equal(n3Before, await _cluster.OwnRowsAsync(3, "t"));
        Assert.Equal(export, await n1.GetByteArrayAsync("v1/tables/t/export"));
    }

    /// <summary>Table t of dim 1 with a row in every range (a key per ring block), and the ring it was pushed by.</summary>
    private async Task<ClusterView> FillAsync(HttpClient n1)
    {
        await Wire.CreateTableAsync(n1, "t", """{"dim":1}""");
        ulong[] keys = [.. Enumerable.Range(0, 3000).Select(i => (ulong)i << 12)];
        await Wire.PushAsync(n1, "t", keys, Wire.Fill(keys.Length, 1f), 1);
        return await _cluster.ViewAsync(1);
    }

    [Fact]
    public async Task TransfersFromNonPeersOrOfUnknownRangesOrBadBatchesAreRefusedAndChangeNothing()
    {
        using HttpClient n1 = _cluster.Client(1), n3 = _cluster.Client(3);
        ClusterView view = await FillAsync(n1);
        string token = view.Nodes.Single(n => n.Id == "n3").Tokens[0];

        using var notPeer = await n3.GetAsync($"v1/tables/t/ranges/{token}/records");
        await Wire.AssertProblemAsync(notPeer, 400, ProblemCodes.BadRequest);
        using var badToken = await n3.SendAsync(Peer(HttpMethod.Get, "v1/tables/t/ranges/abc/records"));
        await Wire.AssertProblemAsync(badToken, 400, ProblemCodes.BadRequest);
        using var unknown = await n3.SendAsync(Peer(HttpMethod.Get, "v1/tables/t/ranges/12345/records"));
        await Wire.AssertProblemAsync(unknown, 404, ProblemCodes.RangeNotFound);
        using var noTable = await n3.SendAsync(Peer(HttpMethod.Get, $"v1/tables/nope/ranges/{token}/records"));
        await Wire.AssertProblemAsync(noTable, 404, ProblemCodes.TableNotFound);
        using var dropUnknown = await n1.SendAsync(Peer(HttpMethod.Delete, "v1/tables/t/ranges/12345"));
        await Wire.AssertProblemAsync(dropUnknown, 404, ProblemCodes.RangeNotFound);

        // n3's range, offered to n1: refused whole when it does not parse or names another table.
        using var copy = await n3.SendAsync(Peer(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records"));
        byte[] good = await copy.Content.ReadAsByteArrayAsync();
        int count = RecordsIn(good);
        Assert.True(count > 0);
        long before = await _cluster.OwnRowsAsync(1, "t");
        foreach (byte[] bad in new[] { good[..^1], [.. good[..4], 9, 9, 9, 9, .. good[8..]] })
        {
            using var refused = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/records", Records(bad)));
            await Wire.AssertProblemAsync(refused, 400, ProblemCodes.BadRecords);
        }
        using var notPeerWrite = await n1.PostAsync("v1/tables/t/records", Records(good));
        await Wire.AssertProblemAsync(notPeerWrite, 400, ProblemCodes.BadRequest);
        Assert.Equal(before, await _cluster.OwnRowsAsync(1, "t"));
        // A bad batch after a good one: all are checked before any is written, so the good one is not either.
        using var partly = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/records", Records([.. good, 0, 0, 0])));
        string detail = await Wire.AssertProblemAsync(partly, 400, ProblemCodes.BadRecords);
        Assert.Contains("Record batch 2", detail);
        Assert.Contains("Nothing was written", detail);
        Assert.Equal(before, await _cluster.OwnRowsAsync(1, "t"));
        // Two good batches in one request: one write, both applied.
        using var both = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/records", Records([.. good, .. good])));
        Assert.Equal(new RecordsApplied(2, 2L * count), await both.Content.ReadFromJsonAsync(ProtocolJson.Default.RecordsApplied));
        Assert.Equal(before, await _cluster.OwnRowsAsync(1, "t"));   // held, not served: not in n1's own count
        using var back = await n1.SendAsync(Peer(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records"));
        Assert.Equal(count, RecordsIn(await back.Content.ReadAsByteArrayAsync()));
    }

    /// <summary>
    /// Several ranges dropped in one request (what a primary sends a returning node before its copy): a held copy of
    /// two of n3's ranges on n1 goes in one drop; every bad drop is refused whole and drops nothing.
    /// </summary>
    [Fact]
    public async Task SeveralRangesDropInOneRequestAndABadDropDropsNothing()
    {
        using HttpClient n1 = _cluster.Client(1), n3 = _cluster.Client(3);
        ClusterView view = await FillAsync(n1);
        string[] n3Tokens = view.Nodes.Single(n => n.Id == "n3").Tokens;
        string[] n1Tokens = view.Nodes.Single(n => n.Id == "n1").Tokens;
        long held = 0;
        foreach (string token in n3Tokens[..2])
        {
            using var copy = await n3.SendAsync(Peer(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records"));
            byte[] batches = await copy.Content.ReadAsByteArrayAsync();
            held += RecordsIn(batches);
            using var applied = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/records", Records(batches)));
            Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        }
        Assert.True(held > 0);
        StringContent Drop(string json) => new(json, System.Text.Encoding.UTF8, MediaTypes.Json);
        string both = $$"""{"tokens":["{{n3Tokens[0]}}","{{n3Tokens[1]}}"]}""";

        // Refused whole: not a peer, no JSON, no tokens, a token that is not a number, one of a range n1 serves, one
        // that ends none of its ranges.
        using (var notPeer = await n1.PostAsync("v1/tables/t/ranges/drop", Drop(both))) await Wire.AssertProblemAsync(notPeer, 400, ProblemCodes.BadRequest);
        foreach (string bad in new[] { "{", "{}", """{"tokens":[]}""", $$"""{"tokens":["{{n3Tokens[0]}}","x"]}""" })
        {
            using var refused = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/ranges/drop", Drop(bad)));
            await Wire.AssertProblemAsync(refused, 400, ProblemCodes.BadRequest);
        }
        using (var served = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/ranges/drop", Drop($$"""{"tokens":["{{n3Tokens[0]}}","{{n1Tokens[0]}}"]}"""))))
            Assert.Contains("Nothing was dropped", await Wire.AssertProblemAsync(served, 409, ProblemCodes.RangeServed));
        using (var unknown = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/ranges/drop", Drop($$"""{"tokens":["{{n3Tokens[0]}}","12345"]}"""))))
            await Wire.AssertProblemAsync(unknown, 404, ProblemCodes.RangeNotFound);
        using (var still = await n1.SendAsync(Peer(HttpMethod.Get, $"v1/tables/t/ranges/{n3Tokens[0]}/records")))
            Assert.True(RecordsIn(await still.Content.ReadAsByteArrayAsync()) > 0, "a refused drop dropped rows");

        using var dropped = await n1.SendAsync(Peer(HttpMethod.Post, "v1/tables/t/ranges/drop", Drop(both)));
        Assert.Equal(new RangeDropped(held), await dropped.Content.ReadFromJsonAsync(ProtocolJson.Default.RangeDropped));
        foreach (string token in n3Tokens[..2])
        {
            using var gone = await n1.SendAsync(Peer(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records"));
            Assert.Equal(0, RecordsIn(await gone.Content.ReadAsByteArrayAsync()));
        }
    }
}
