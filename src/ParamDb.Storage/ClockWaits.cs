using System.Text;
using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>Turns the end of a store's clock wait into what a pull answers (docs/consistency.md).</summary>
public static class ClockWaits
{
    /// <summary>The pull's view of a finished wait: reached, or the problem that ends the pull.</summary>
    /// <param name="result">How the store's wait ended.</param>
    /// <param name="table">The table waited on.</param>
    /// <param name="consistency">What the pull asked for.</param>
    /// <param name="clock">The pull's clock.</param>
    /// <param name="target">The clock waited for.</param>
    /// <param name="timeout">How long the pull could wait.</param>
    public static ClockWait From(ClockWaitResult result, TableHandle table, Consistency consistency, ulong clock, ulong target, TimeSpan timeout)
    {
        switch (result.Status)
        {
            case ClockWaitStatus.Reached:
                return new ClockWait(result.ClockMin, default, null, target);
            case ClockWaitStatus.TableDeleted:
                return new ClockWait(0, new ProtocolError(404, ProblemCodes.TableNotFound, $"Table '{table.Name}' was deleted while the pull waited for clock {target}."), null, target);
            case ClockWaitStatus.Closing:
                return new ClockWait(0, new ProtocolError(503, ProblemCodes.Unavailable, "The node is shutting down; the pull stopped waiting. Retry on the restarted node."), null, target);
        }
        var behind = new WorkerClock[result.Behind.Count];
        var names = new StringBuilder();
        for (int i = 0; i < behind.Length; i++)
        {
            LaggingWorker w = result.Behind[i];
            behind[i] = new WorkerClock(w.Worker, w.Name, w.Clock);
            if (i > 0) names.Append(", ");
            if (i == 8) { names.Append("and ").Append(behind.Length - 8).Append(" more"); break; }
            names.Append($"worker {w.Worker} ('{w.Name}') at clock {w.Clock}");
        }
        var error = new ProtocolError(408, ProblemCodes.ClockWaitTimeout,
            $"A {consistency} pull at clock {clock} on table '{table.Name}' needs every live worker at clock {target} or later; after {timeout.TotalMilliseconds:F0} ms these were behind: {names}.");
        return new ClockWait(result.ClockMin, error, behind, target);
    }
}
