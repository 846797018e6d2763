using System.Diagnostics;

namespace ParamDb.Storage;

/// <summary>
/// Named places where a test can make a node fail on purpose (docs/replication.md, "Testing"): the test starts a
/// real node with <c>PARAMDB_FAILPOINTS=name=action[,name=action…]</c>, and the node acts when it reaches the
/// place. Actions: <c>crash</c> (SIGKILL to itself: nothing more is written or flushed), <c>delay:MS</c>, and
/// <c>throw</c> (an <see cref="IOException"/>, as a failing disk would). Only in Debug builds, the ones tests
/// run: a Release build compiles every <see cref="Hit"/> away, so production and benchmarks pay nothing.
/// </summary>
public static class Failpoints
{
    /// <summary>The environment variable that arms failpoints.</summary>
    public const string Variable = "PARAMDB_FAILPOINTS";

    /// <summary>After a record batch was checked, before it goes to the write-ahead log.</summary>
    public const string RecordsBeforeLog = "records.before-log";

    /// <summary>After a peer's record batches are durable in the write-ahead log, before the peer is answered.</summary>
    public const string RecordsAfterLog = "records.after-log";

    /// <summary>A primary about to send a batch of replicated records to a backup.</summary>
    public const string ReplicationSend = "replication.send";

    /// <summary>A backup that has just received a request of record batches, before it reads them.</summary>
    public const string ReplicationReceive = "replication.receive";

    /// <summary>A primary about to resend arcs whole to a backup that is new to them or back from down (catch-up).</summary>
    public const string CatchUp = "replication.catch-up";

    /// <summary>A primary about to send a stand-in one request of an arc whose chain lost a node (re-replication).</summary>
    public const string StandIn = "replication.stand-in";

    /// <summary>A node about to serve arcs it held as a backup (a failover promoted it), before its store switches.</summary>
    public const string Promotion = "promotion";

    /// <summary>A node that has just found its lease lapsed.</summary>
    public const string LeaseLapse = "lease.lapse";

    private static readonly Dictionary<string, string> Armed = Parse(Environment.GetEnvironmentVariable(Variable));

    /// <summary>Acts as armed for <paramref name="name"/>; nothing when it is not armed (or in a Release build).</summary>
    [Conditional("DEBUG")]
    public static void Hit(string name)
    {
        if (Armed.Count == 0 || !Armed.TryGetValue(name, out string? action)) return;
        if (action == "crash")
        {
            Console.Error.WriteLine($"failpoint {name}: crash");
            Process.GetCurrentProcess().Kill();
        }
        else if (action.StartsWith("delay:", StringComparison.Ordinal) && int.TryParse(action.AsSpan(6), out int ms))
        {
            Thread.Sleep(ms);
        }
        else if (action == "throw")
        {
            throw new IOException($"failpoint {name}: throw");
        }
    }

    /// <summary>
    /// As <see cref="Hit"/> for async code: a <c>delay:MS</c> awaits instead of blocking a thread (a blocked pool
    /// thread per request starves the node's heartbeats, and a slow backup would be declared down). Completes at once
    /// in a Release build.
    /// </summary>
    public static ValueTask HitAsync(string name)
    {
#if DEBUG
        if (Armed.Count > 0 && Armed.TryGetValue(name, out string? action)
            && action.StartsWith("delay:", StringComparison.Ordinal) && int.TryParse(action.AsSpan(6), out int ms))
            return new ValueTask(Task.Delay(ms));
        Hit(name);
#endif
        return ValueTask.CompletedTask;
    }

    /// <summary><c>a=crash,b=delay:100</c> → {a: crash, b: delay:100}; malformed entries are ignored.</summary>
    internal static Dictionary<string, string> Parse(string? spec)
    {
        var armed = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(spec)) return armed;
        foreach (string entry in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = entry.IndexOf('=');
            if (eq > 0 && eq < entry.Length - 1) armed[entry[..eq]] = entry[(eq + 1)..];
        }
        return armed;
    }
}
