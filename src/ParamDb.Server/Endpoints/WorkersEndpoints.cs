using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ParamDb.Protocol;
using ParamDb.Server.Data;
using ParamDb.Server.Hosting;
using ParamDb.Server.Http;
using ParamDb.Storage;

namespace ParamDb.Server.Endpoints;

/// <summary>
/// Workers (docs/consistency.md): <c>POST /v1/workers</c>, <c>POST /v1/workers/{id}/heartbeat</c>,
/// <c>DELETE /v1/workers/{id}</c>, <c>GET /v1/workers</c>.
/// </summary>
public static class WorkersEndpoints
{
    /// <summary>Largest registration body; one is a few hundred bytes, 1,024 table names fit.</summary>
    private const long MaxRegistrationBytes = 256 * 1024;

    /// <summary>Maps the worker routes.</summary>
    public static RouteGroupBuilder MapWorkers(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/workers").WithTags("Workers");
        group.MapPost("/", RegisterAsync)
            .WithName("RegisterWorker")
            .WithSummary("Register a worker; send its id as ParamDb-Worker on pushes and pulls.")
            .WithDescription("Body: {\"name\":\"w0\",\"tables\":[\"emb\"],\"leaseMs\":10000}. tables (optional, default every table) are those whose consistent pulls wait for this worker; a worker not heard from for leaseMs stops counting until it is heard from again.")
            .Accepts<WorkerRegistration>(MediaTypes.Json);
        group.MapGet("/", List).WithName("ListWorkers").WithSummary("Every registered worker, with its lease.");
        group.MapPost("/{id}/heartbeat", HeartbeatAsync).WithName("WorkerHeartbeat").WithSummary("Renew a worker's lease (any push or pull by the worker renews it too).");
        group.MapDelete("/{id}", RemoveAsync).WithName("RemoveWorker").WithSummary("A worker leaves: it stops counting at once and its id is refused from then on.");
        return group;
    }

    private static async Task<Results<Created<WorkerInfo>, ProblemHttpResult>> RegisterAsync(HttpRequest request, StoreHost host)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        if (!Negotiation.TryRequestFormat(request, out var format, out var error) || format != BodyFormat.Json)
            return Problems.Of(415, ProblemCodes.UnsupportedMediaType, $"A worker registration is JSON: send Content-Type: {MediaTypes.Json}.");
        var (body, readError) = await RequestBody.ReadAsync(request, MaxRegistrationBytes, request.HttpContext.RequestAborted);
        if (body is null) return Problems.From(readError);
        WorkerRegistration? registration;
        using (body)
        {
            try
            {
                registration = JsonSerializer.Deserialize(body.Span, ProtocolJson.Default.WorkerRegistration);
            }
            catch (JsonException e)
            {
                return Problems.Of(400, ProblemCodes.InvalidWorker, $"The registration does not parse: {e.Message}");
            }
        }
        if (!TryValidate(registration, out string name, out string[] tables, out int leaseMs, out error)) return Problems.From(error);
        WorkerState state = await node.Workers.RegisterAsync(name, tables, leaseMs, request.HttpContext.RequestAborted);
        return TypedResults.Created($"/v1/workers/{state.Id}", Describe(state));
    }

    private static bool TryValidate(WorkerRegistration? registration, out string name, out string[] tables, out int leaseMs, out ProtocolError error)
    {
        name = registration?.Name ?? "";
        tables = [];
        leaseMs = registration?.LeaseMs ?? WorkerLimits.DefaultLeaseMs;
        if (registration is null) error = Invalid("The registration is null; send {\"name\":\"w0\",\"tables\":[\"emb\"]}.");
        else if (name.Length is 0 or > WorkerLimits.MaxNameLength || name.Any(char.IsControl))
            error = Invalid($"name must be 1 to {WorkerLimits.MaxNameLength} printable characters; got {(name.Length == 0 ? "none" : $"{name.Length} characters")}.");
        else if (leaseMs is < WorkerLimits.MinLeaseMs or > WorkerLimits.MaxLeaseMs)
            error = Invalid($"leaseMs must be {WorkerLimits.MinLeaseMs} … {WorkerLimits.MaxLeaseMs}; got {leaseMs}.");
        else if (registration.Tables is { Count: > WorkerLimits.MaxTables } many)
            error = Invalid($"A worker may name at most {WorkerLimits.MaxTables} tables; got {many.Count}.");
        else if (registration.Tables?.FirstOrDefault(t => !TableNames.IsValid(t)) is { } bad)
            error = new ProtocolError(400, ProblemCodes.InvalidTableName, $"'{bad}' is not a valid table name: use 1 to {TableNames.MaxLength} characters of A-Z a-z 0-9 _ . -");
        else
        {
            // Tables need not exist yet: workers usually register before the first table is created.
            tables = registration.Tables is null ? [] : [.. registration.Tables.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            error = default;
            return true;
        }
        return false;
    }

    private static Ok<WorkerList> List(StoreHost host) =>
        TypedResults.Ok(new WorkerList { Workers = host.Node is { } node ? node.Workers.List().Select(Describe).ToList() : [] });

    private static async Task<Results<Ok<WorkerInfo>, ProblemHttpResult>> HeartbeatAsync(string id, HttpRequest request, StoreHost host, CancellationToken ct)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        if (!TryParseId(id, out uint worker, out var problem)) return problem;
        // A peer passing on a heartbeat: renewed here only. A worker registered a moment ago may not have reached
        // this node yet: catch up with the manager first (this is how a registration waits for every node).
        if (Peers.IsPeer(request))
        {
            bool known = node.Workers.Touch(worker);
            if (!known && node.Cluster is { } member && await member.TryCatchUpAsync(ct)) known = node.Workers.Touch(worker);
            return known && node.Workers.List().FirstOrDefault(w => w.Id == worker) is { Id: > 0 } renewed
                ? TypedResults.Ok(Describe(renewed))
                : Problems.From(DataErrors.WorkerNotFound(worker));
        }
        return await node.Workers.HeartbeatAsync(worker, ct) is { } state ? TypedResults.Ok(Describe(state)) : Problems.From(DataErrors.WorkerNotFound(worker));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RemoveAsync(string id, StoreHost host, CancellationToken ct)
    {
        if (host.Node is not { } node) return Problems.Unavailable();
        if (!TryParseId(id, out uint worker, out var problem)) return problem;
        return await node.Workers.RemoveAsync(worker, ct) ? TypedResults.NoContent() : Problems.From(DataErrors.WorkerNotFound(worker));
    }

    private static bool TryParseId(string id, out uint worker, out ProblemHttpResult problem)
    {
        problem = null!;
        if (uint.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out worker) && worker != 0) return true;
        problem = Problems.From(DataErrors.WorkerNotFound(0) with { Detail = $"'{id}' is not a worker id: ids are integers from 1, as POST /v1/workers returns them." });
        return false;
    }

    private static WorkerInfo Describe(WorkerState state) => new()
    {
        Worker = state.Id,
        Name = state.Name,
        Tables = state.Tables,
        LeaseMs = state.LeaseMs,
        Live = state.Live,
        ExpiresInMs = (long)state.ExpiresIn.TotalMilliseconds,
    };

    private static ProtocolError Invalid(string detail) => new(400, ProblemCodes.InvalidWorker, detail);
}
