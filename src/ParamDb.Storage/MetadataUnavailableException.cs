using ParamDb.Protocol;

namespace ParamDb.Storage;

/// <summary>
/// A table or worker change could not be made now: in a cluster, no leader is known to commit it (503
/// <c>no_leader</c>). Nothing changed; the request can be retried after <see cref="RetryAfter"/>.
/// </summary>
/// <param name="error">What the client is told.</param>
/// <param name="retryAfter">When a retry may succeed (an election takes a few hundred milliseconds).</param>
/// <param name="inner">What failed underneath.</param>
public sealed class MetadataUnavailableException(ProtocolError error, TimeSpan retryAfter, Exception? inner = null) : Exception(error.Detail, inner)
{
    /// <summary>The problem to answer with.</summary>
    public ProtocolError Error { get; } = error;

    /// <summary>When to retry.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;
}
