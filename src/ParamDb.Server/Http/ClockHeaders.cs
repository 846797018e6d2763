using System.Globalization;
using ParamDb.Protocol;
using ParamDb.Storage;

namespace ParamDb.Server.Http;

/// <summary>The clock fields of a REST request: <c>ParamDb-Worker</c>, <c>-Clock</c>, <c>-Consistency</c>, <c>-Timeout-Ms</c> (docs/streaming.md, docs/consistency.md).</summary>
/// <param name="Worker">Registered worker id; 0 for none.</param>
/// <param name="Clock">The worker's clock; 0 for none.</param>
/// <param name="Consistency">What a pull waits for; eventual by default.</param>
/// <param name="Timeout">How long a pull may wait.</param>
/// <param name="RingEpoch">The ring epoch the client sliced its keys by (<c>ParamDb-Ring-Epoch</c>); 0 when absent.</param>
/// <param name="AnyCopy">A pull that any copy may answer (<c>ParamDb-Read-From: any</c>); eventual only.</param>
public readonly record struct ClockHeaders(uint Worker, ulong Clock, Consistency Consistency, TimeSpan Timeout, ulong RingEpoch, bool AnyCopy = false)
{
    /// <summary>The push stamp.</summary>
    public WorkerStamp Stamp => new(Worker, Clock);

    /// <summary>The push's options for the data plane.</summary>
    public PushOptions Push(bool fromJson) => new(Stamp, RingEpoch, fromJson);

    /// <summary>The pull's options for the data plane.</summary>
    public PullOptions Pull => new(Worker, Clock, Consistency, Timeout, RingEpoch, AnyCopy);

    /// <summary>Reads and validates the headers; absent headers take their defaults.</summary>
    public static bool TryRead(HttpRequest request, out ClockHeaders headers, out ProtocolError error)
    {
        headers = default;
        uint worker = 0;
        ulong clock = 0;
        Consistency consistency = Consistency.Eventual;
        TimeSpan timeout = DataErrors.DefaultWaitTimeout;
        if (request.Headers[ParamDbHeaders.Worker].ToString() is { Length: > 0 } w
            && !uint.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out worker))
        {
            error = Bad(ParamDbHeaders.Worker, w, "a worker id from POST /v1/workers (1 … 4294967295)");
            return false;
        }
        if (request.Headers[ParamDbHeaders.Clock].ToString() is { Length: > 0 } c
            && !ulong.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out clock))
        {
            error = Bad(ParamDbHeaders.Clock, c, "an integer clock 0 … 2^64-1");
            return false;
        }
        if (request.Headers[ParamDbHeaders.Consistency].ToString() is { Length: > 0 } k
            && !Consistency.TryParse(k, out consistency))
        {
            error = Bad(ParamDbHeaders.Consistency, k, "eventual, sequential or bounded:τ with an integer τ ≥ 0");
            return false;
        }
        if (request.Headers[ParamDbHeaders.TimeoutMs].ToString() is { Length: > 0 } t)
        {
            if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long ms) || ms > (long)DataErrors.MaxWaitTimeout.TotalMilliseconds)
            {
                error = Bad(ParamDbHeaders.TimeoutMs, t, $"milliseconds, 0 … {(long)DataErrors.MaxWaitTimeout.TotalMilliseconds}");
                return false;
            }
            timeout = TimeSpan.FromMilliseconds(ms);
        }
        ulong epoch = 0;
        if (request.Headers[ParamDbHeaders.RingEpoch].ToString() is { Length: > 0 } e
            && !ulong.TryParse(e, NumberStyles.None, CultureInfo.InvariantCulture, out epoch))
        {
            error = Bad(ParamDbHeaders.RingEpoch, e, "a ring epoch from GET /v1/cluster (an integer 0 … 2^64-1)");
            return false;
        }
        bool anyCopy = false;
        if (request.Headers[ParamDbHeaders.ReadFrom].ToString() is { Length: > 0 } from)
        {
            if (from is not ("primary" or "any"))
            {
                error = Bad(ParamDbHeaders.ReadFrom, from, "primary or any");
                return false;
            }
            anyCopy = from == "any";
            // A backup's copy may lag its primary by the batches on the wire, and its clocks with it: it can answer
            // a pull that waits for nothing, never one that waits for clocks.
            if (anyCopy && !consistency.IsEventual)
            {
                error = new ProtocolError(400, ProblemCodes.BadHeader,
                    $"{ParamDbHeaders.ReadFrom}: any serves eventual pulls only, and this one asks for {consistency}: a backup's copy may lag its primary's. Drop {ParamDbHeaders.ReadFrom}, or pull with {ParamDbHeaders.Consistency}: eventual.");
                return false;
            }
        }
        headers = new ClockHeaders(worker, clock, consistency, timeout, epoch, anyCopy);
        error = default;
        return true;
    }

    private static ProtocolError Bad(string header, string value, string expected) =>
        new(400, ProblemCodes.BadHeader, $"{header}: '{value}' is not {expected}.");
}
