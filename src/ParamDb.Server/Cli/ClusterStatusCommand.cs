using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using ParamDb.Protocol;
using ParamDb.Protocol.Cluster;

namespace ParamDb.Server.Cli;

/// <summary>
/// <c>paramdb cluster status</c>: the ring as <c>GET /v1/cluster</c> has it, and each node's ranges and rows
/// (<c>GET /v1/tables?scope=node</c> on every node), so an operator sees who is up, who leads, and how even the
/// keys are spread.
/// </summary>
public sealed class ClusterStatusCommand : CliCommand
{
    /// <inheritdoc />
    public override IReadOnlyList<string> Words { get; } = ["cluster", "status"];

    /// <inheritdoc />
    public override string Synopsis => "";

    /// <inheritdoc />
    public override string Summary => "Show the cluster's nodes, their state, the leader, the ring epoch, and the ranges and rows each node holds.";

    /// <inheritdoc />
    public override string Details => "  Asks the node at --url for the ring, then every node for its own rows." + Environment.NewLine;

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArguments arguments, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(console);
        using var http = CliHttp.CreateClient(arguments.Url);
        using var reply = await http.GetAsync("v1/cluster", cancellationToken);
        if (!reply.IsSuccessStatusCode) return await CliHttp.FailAsync(this, reply, console, cancellationToken);
        ClusterView view = (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.ClusterView, cancellationToken))!;

        var rows = new long?[view.Nodes.Count];
        await Task.WhenAll(view.Nodes.Select(async (node, i) => rows[i] = await RowsAsync(node, arguments.Url, cancellationToken)));
        await console.Out.WriteLineAsync(Render(view, rows));
        return 0;
    }

    /// <summary>The node's own rows over all tables; null when it does not answer.</summary>
    private static async Task<long?> RowsAsync(ClusterNode node, Uri fallback, CancellationToken cancellationToken)
    {
        Uri address = node.Http is { } http ? new Uri($"{fallback.Scheme}://{http}/") : fallback;
        using var client = CliHttp.CreateClient(address);
        client.Timeout = TimeSpan.FromSeconds(5);
        try
        {
            TableList? tables = await client.GetFromJsonAsync("v1/tables?scope=node", ProtocolJson.Default.TableList, cancellationToken);
            long sum = 0;
            foreach (TableInfo table in tables?.Tables ?? []) sum += table.Rows;
            return sum;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The status table, one line per node, then the spread of rows.</summary>
    public static string Render(ClusterView view, IReadOnlyList<long?> rows)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"ring epoch {view.Epoch} · leader {view.Leader ?? "none"} · {view.Nodes.Count} node{(view.Nodes.Count == 1 ? "" : "s")} · R {view.Replicas} · V {view.VirtualNodes}");
        if (view.UnderReplicated > 0 || view.Unavailable > 0)
            text.Append(CultureInfo.InvariantCulture, $" · {view.UnderReplicated} ranges under-replicated, {view.Unavailable} unavailable");
        text.AppendLine().AppendLine();
        int idWidth = Math.Max(4, view.Nodes.Max(n => n.Id.Length));
        int httpWidth = Math.Max(4, view.Nodes.Max(n => n.Http?.Length ?? 1));
        text.AppendLine(CultureInfo.InvariantCulture, $"{"node".PadRight(idWidth)}  {"state",-8}  {"http".PadRight(httpWidth)}  {"ranges",6}  {"rows",14}");
        for (int i = 0; i < view.Nodes.Count; i++)
        {
            ClusterNode node = view.Nodes[i];
            string count = rows[i] is { } r ? r.ToString("N0", CultureInfo.InvariantCulture) : "unreachable";
            string state = node.State.ToString().ToLowerInvariant() + (node.Id == view.Leader ? "*" : "");
            text.AppendLine(CultureInfo.InvariantCulture, $"{node.Id.PadRight(idWidth)}  {state,-8}  {(node.Http ?? "-").PadRight(httpWidth)}  {node.Tokens.Length,6}  {count,14}");
        }
        long[] known = [.. rows.Where(r => r is not null).Select(r => r!.Value)];
        if (known.Length > 1 && known.Sum() > 0)
        {
            double mean = known.Average();
            double spread = known.Max(r => Math.Abs(r - mean)) / mean;
            text.AppendLine().Append(CultureInfo.InvariantCulture, $"rows per node within ±{spread:P1} of the mean (* leads)");
        }
        return text.ToString().TrimEnd();
    }
}
