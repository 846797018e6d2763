namespace ParamDb.Cluster.Membership;

/// <summary>A node cannot take its place in the cluster; the message says why and what to do, in one line.</summary>
/// <param name="message">The reason, naming the flag, address or folder at fault.</param>
/// <param name="inner">What failed underneath, if anything.</param>
public sealed class ClusterStartException(string message, Exception? inner = null) : Exception(message, inner);
