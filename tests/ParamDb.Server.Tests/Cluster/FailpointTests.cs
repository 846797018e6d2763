using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using ParamDb.Cluster.Membership;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;
using ParamDb.Storage;
using ParamDb.Testing;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>
/// A backup that dies while it writes replicated records: real processes, one of them armed with a failpoint
/// (<c>PARAMDB_FAILPOINTS</c>) that kills it with SIGKILL before or after its write-ahead log holds a batch. After the
/// restart it holds the batch exactly when the batch reached its log, the point where it would have answered.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class FailpointTests : IDisposable
{
    private readonly ProcessCluster _cluster = new(2);

    public void Dispose() => _cluster.Dispose();

    private HttpClient Client(int i) => _cluster.Client(i);

    private async Task<long> OwnRowsAsync(int i)
    {
        using HttpClient http = Client(i);
        return (await http.GetFromJsonAsync("v1/tables/t?scope=node", ProtocolJson.Default.TableInfo))!.Rows;
    }

    private static int RecordsIn(byte[] batch) =>
        Storage.Transfer.RecordBatch.TryParse(batch, out var parsed, out string error) ? parsed.Count : throw new InvalidDataException(error);

    [Theory]
    [InlineData(Failpoints.RecordsBeforeLog, false)]
    [InlineData(Failpoints.RecordsAfterLog, true)]
    public async Task ABackupKilledWhileItWritesRecordsHoldsThemAfterARestartExactlyWhenTheyReachedItsLog(string failpoint, bool held)
    {
        await _cluster.StartAsync(1, null, "--cluster-init", "--replicas", "1");   // the records route alone: no replication of its own
        await _cluster.StartAsync(2, new Dictionary<string, string> { [Failpoints.Variable] = $"{failpoint}=crash" }, _cluster.Join);
        using HttpClient n1 = Client(1);
        await Wire.CreateTableAsync(n1, "t", """{"dim":2,"updater":{"kind":"adagrad","lr":0.1}}""");
        ulong[] keys = [.. Enumerable.Range(0, 2000).Select(i => (ulong)i << 12)];
        await Wire.PushAsync(n1, "t", keys, Wire.Fill(2 * keys.Length, 1f), 2);

        // A copy of n1's first range, offered to n2 as a backup would be sent it.
        ClusterView view = (await n1.GetFromJsonAsync("v1/cluster", ProtocolJson.Default.ClusterView))!;
        string token = view.Nodes.Single(n => n.Id == "n1").Tokens[0];
        using var get = new HttpRequestMessage(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records") { Headers = { { PeerHttp.PeerHeader, "n1" } } };
        using var copy = await n1.SendAsync(get);
        byte[] records = await copy.Content.ReadAsByteArrayAsync();
        int count = RecordsIn(records);
        Assert.True(count > 0);
        long before = await OwnRowsAsync(2);

        using (HttpClient n2 = Client(2))
        {
            using var post = new HttpRequestMessage(HttpMethod.Post, "v1/tables/t/records")
            {
                Content = new ByteArrayContent(records) { Headers = { { "Content-Type", MediaTypes.Records } } },
                Headers = { { PeerHttp.PeerHeader, "n1" } },
            };
            // The failpoint kills n2 before it answers: no reply, the connection ends.
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => n2.SendAsync(post));
        }
        Process dead = _cluster[2]!.Process;
        using (var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30))) await dead.WaitForExitAsync(exit.Token);
        Assert.NotEqual(0, dead.ExitCode);

        await _cluster.StartAsync(2, null);   // a restart: no flags, no failpoint
        Assert.Equal(before, await OwnRowsAsync(2));   // a held copy is not among the rows n2 serves
        using HttpClient restarted = Client(2);
        using var back = new HttpRequestMessage(HttpMethod.Get, $"v1/tables/t/ranges/{token}/records") { Headers = { { PeerHttp.PeerHeader, "n1" } } };
        using var copyBack = await restarted.SendAsync(back);
        Assert.Equal(held ? count : 0, RecordsIn(await copyBack.Content.ReadAsByteArrayAsync()));
    }
}
