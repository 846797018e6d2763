using System.Net;
using System.Net.Http.Json;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage.Transfer;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// Replication after aggregation (docs/replication.md) on three nodes at R = 2: once a push is acknowledged, every
/// arc's backup holds exactly its primary's records (values, optimizer state) and clock.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReplicationTests
{
    /// <summary>One arc's copy as a node holds it: (key, payload bytes) ascending, and the clock entries.</summary>
    internal static async Task<(SortedDictionary<ulong, string> Rows, SortedDictionary<uint, ulong> Clock)> CopyAsync(Func<int, HttpClient> client, int node, string token, string? secret = null, string table = "t")
    {
        using HttpClient http = client(node);
        using var get = new HttpRequestMessage(HttpMethod.Get, $"v1/tables/{table}/ranges/{token}/records") { Headers = { { PeerHttp.PeerHeader, "test" } } };
        if (secret is not null) get.Headers.Add(PeerHttp.SecretHeader, secret);
        using var reply = await http.SendAsync(get);
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        byte[] bytes = await reply.Content.ReadAsByteArrayAsync();
        var slices = new List<Range>();
        Assert.True(RecordBatch.TrySplit(bytes, slices, out _, out string error), error);
        var rows = new SortedDictionary<ulong, string>();
        var clock = new SortedDictionary<uint, ulong>();
        foreach (Range slice in slices)
        {
            Assert.True(RecordBatch.TryParse(bytes.AsSpan(slice), out RecordBatch batch, out error), error);
            for (int i = 0; i < batch.Count; i++)
                rows[batch.Keys[i]] = Convert.ToHexString(batch.Payloads.Slice(i * batch.PayloadBytes, batch.PayloadBytes));
            for (int i = 0; i < batch.ClockCount; i++)
            {
                var (worker, value) = batch.ClockAt(i);
                clock[worker] = value;
            }
        }
        return (rows, clock);
    }

    [Fact]
    public async Task AfterAnAcknowledgedPushEveryBackupHoldsItsPrimarysRecordsAndClock()
    {
        await using LocalCluster cluster = await LocalCluster.StartAsync(3);
        using HttpClient n1 = cluster.Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":2,"updater":{"kind":"adagrad","lr":0.1}}""");
        uint worker = await ClockApiTests.RegisterAsync(n1, "w");
        var random = new Random(7);
        long pushedKeys = 9000;
        for (ulong clock = 1; clock <= 5; clock++)
        {
            ulong[] keys = [.. Enumerable.Range(0, 300).Select(_ => (ulong)random.Next(0, 1 << 22)).Distinct().Order()];
            pushedKeys += keys.Length;
            string values = string.Join(",", keys.Select(k => $"[{k % 7},{clock}]"));
            var (status, body) = await ClockApiTests.PushAsync(n1, "t", $$"""{"keys":[{{string.Join(",", keys)}}],"values":[{{values}}]}""", worker, clock);
            Assert.True(status == HttpStatusCode.OK, body);
        }
        // And an unclocked dense push across several blocks.
        await Wire.PushAsync(n1, "t", [.. Enumerable.Range(1 << 20, 9000).Select(i => (ulong)i)], Wire.Fill(2 * 9000, 0.5f), 2);

        ClusterView view = await cluster.ViewAsync(1);
        ClusterRing ring = ClusterRing.FromView(view);
        int compared = 0, rows = 0;
        for (int i = 0; i < ring.Tokens.Length; i++)
        {
            string token = ring.Tokens[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
            int[] set = ring.ReplicasAt(i).ToArray();
            var primary = await CopyAsync(cluster.Client, set[0] + 1, token);   // node index n is node n+1 (ids n1…n3 in order)
            var backup = await CopyAsync(cluster.Client, set[1] + 1, token);
            Assert.Equal(primary.Rows, backup.Rows);
            Assert.Equal(primary.Clock, backup.Clock);
            Assert.Equal(5UL, primary.Clock[worker]);   // every served arc counts the worker's 5 pushes
            compared++;
            rows += primary.Rows.Count;
        }
        Assert.Equal(192, compared);
        Assert.True(rows > 9000, $"only {rows} rows compared");

        // The counters of GET /v1/health: every pushed value counted once, by the primary that applied it; every
        // acknowledged push's rows (key + value + adagrad's accumulator) shipped to the backup before its reply,
        // and no push here waited behind another, so none folded into another's batch.
        long pushed = 0, replicated = 0;
        for (int node = 1; node <= 3; node++)
        {
            using HttpClient http = cluster.Client(node);
            HealthReply health = (await http.GetFromJsonAsync("v1/health", ProtocolJson.Default.HealthReply))!;
            Assert.NotNull(health.Replication);
            pushed += health.Replication.PushedBytes;
            replicated += health.Replication.ReplicatedBytes;
        }
        Assert.Equal(pushedKeys * 2 * sizeof(float), pushed);
        long rowBytes = pushedKeys * (sizeof(ulong) + 2 * 2 * sizeof(float));
        Assert.InRange(replicated, rowBytes, rowBytes + 1024 * 1024);   // plus batch headers and clocks
    }
}
