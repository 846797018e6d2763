using System.Globalization;
using System.Net;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Reads from backups (docs/replication.md, "Reads"): an eventual pull with <c>ParamDb-Read-From: any</c> may be
/// answered from a backup's own copy; without it, only the keys' primary answers. Three nodes at R = 2.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BackupReadTests : IAsyncLifetime
{
    private LocalCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await LocalCluster.StartAsync(3);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static async Task<(HttpStatusCode Status, float[] Values, string Body)> PullAsync(HttpClient http, ulong[] keys, ulong epoch = 0, string? readFrom = null, string? consistency = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/tables/t/pull") { Content = Wire.Kv(Wire.PullBlock(keys)) };
        if (epoch > 0) request.Headers.Add(ParamDbHeaders.RingEpoch, epoch.ToString(CultureInfo.InvariantCulture));
        if (readFrom is not null) request.Headers.Add(ParamDbHeaders.ReadFrom, readFrom);
        if (consistency is not null) request.Headers.Add(ParamDbHeaders.Consistency, consistency);
        using HttpResponseMessage reply = await http.SendAsync(request);
        byte[] body = await reply.Content.ReadAsByteArrayAsync();
        return reply.StatusCode == HttpStatusCode.OK ? (reply.StatusCode, Wire.ValuesOf(body, keys), "") : (reply.StatusCode, [], System.Text.Encoding.UTF8.GetString(body));
    }

    [Fact]
    public async Task AnEventualPullIsAnsweredFromABackupsCopyOnlyWhenItAsksForAnyCopy()
    {
        using HttpClient n1 = _cluster.Client(1), n2 = _cluster.Client(2);
        await Wire.CreateTableAsync(n1, "t", """{"dim":2}""");
        ClusterView view = await _cluster.ViewAsync(1);
        ClusterRing ring = ClusterRing.FromView(view);
        ulong hash = Ring.NameHash("t");
        int b = ring.NodeIndex("n2");
        // Keys (one per ring block) whose arc n2 backs up and does not serve.
        ulong[] keys = [.. Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).Where(k =>
        {
            ReadOnlySpan<int> set = ring.ReplicasAt(ring.RangeOf(Ring.Position(hash, k)));
            return set[0] != b && set[1] == b;
        }).Take(8)];
        Assert.Equal(8, keys.Length);
        await Wire.PushAsync(n1, "t", keys, Wire.Fill(2 * keys.Length, 1.5f), 2);   // acknowledged: n2 has written them

        // Sent to n2 as if sliced by the ring: only the primary answers, unless the pull lets any copy answer.
        var refused = await PullAsync(n2, keys, view.Epoch);
        Assert.Equal(HttpStatusCode.MisdirectedRequest, refused.Status);
        Assert.Contains("wrong_node", refused.Body);
        var fromCopy = await PullAsync(n2, keys, view.Epoch, readFrom: "any");
        Assert.Equal(HttpStatusCode.OK, fromCopy.Status);
        Assert.All(fromCopy.Values, v => Assert.Equal(1.5f, v));
        var asPrimary = await PullAsync(n2, keys, view.Epoch, readFrom: "primary");
        Assert.Equal(HttpStatusCode.MisdirectedRequest, asPrimary.Status);

        // It is n2's own copy that answers: with n2's copy of the first key's arc dropped, a pull through n2 that lets
        // any copy answer reads that key's initial value (0), and one that does not is routed to the primary.
        string token = ring.Tokens[ring.RangeOf(Ring.Position(hash, keys[0]))].ToString(CultureInfo.InvariantCulture);
        using (var drop = new HttpRequestMessage(HttpMethod.Delete, $"v1/tables/t/ranges/{token}") { Headers = { { PeerHttp.PeerHeader, "test" } } })
        using (HttpResponseMessage dropped = await n2.SendAsync(drop))
            Assert.Equal(HttpStatusCode.OK, dropped.StatusCode);
        ulong TokenOf(ulong key) => ring.Tokens[ring.RangeOf(Ring.Position(hash, key))];
        float[] expected = [.. keys.SelectMany(k => TokenOf(k) == TokenOf(keys[0]) ? new[] { 0f, 0f } : [1.5f, 1.5f])];
        var routedAny = await PullAsync(n2, keys, readFrom: "any");
        Assert.Equal(HttpStatusCode.OK, routedAny.Status);
        Assert.Equal(expected, routedAny.Values);
        var routed = await PullAsync(n2, keys);
        Assert.All(routed.Values, v => Assert.Equal(1.5f, v));

        // A key whose arc n2 holds no copy of is routed to its primary, or refused when the pull was sliced for n2.
        ulong kept = keys.First(k => TokenOf(k) != TokenOf(keys[0]));
        ulong elsewhere = Enumerable.Range(0, 100_000).Select(i => (ulong)i << Ring.BlockBits).First(k => !ring.Holds(b, hash, k));
        ulong[] pair = [.. new[] { kept, elsewhere }.Order()];   // a block's keys ascend
        var mixed = await PullAsync(n2, pair, readFrom: "any");
        Assert.Equal(HttpStatusCode.OK, mixed.Status);
        Assert.Equal([.. pair.SelectMany(k => k == kept ? new[] { 1.5f, 1.5f } : [0f, 0f])], mixed.Values);
        var slicedElsewhere = await PullAsync(n2, pair, view.Epoch, readFrom: "any");
        Assert.Equal(HttpStatusCode.MisdirectedRequest, slicedElsewhere.Status);
        Assert.Contains($"holds no copy of key {elsewhere}", slicedElsewhere.Body);
    }

    [Theory]
    [InlineData("nearest", null, "ParamDb-Read-From: 'nearest' is not primary or any")]
    [InlineData("ANY", null, "ParamDb-Read-From: 'ANY' is not primary or any")]
    [InlineData("any", "sequential", "ParamDb-Read-From: any serves eventual pulls only")]
    [InlineData("any", "bounded:2", "ParamDb-Read-From: any serves eventual pulls only")]
    public async Task ABadReadFromIsRefusedNamingIt(string readFrom, string? consistency, string detail)
    {
        using HttpClient n1 = _cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":2}""");
        var reply = await PullAsync(n1, [1, 2], readFrom: readFrom, consistency: consistency);
        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Contains("\"code\":\"bad_header\"", reply.Body);
        Assert.Contains(detail, reply.Body);
    }
}
