using ParamDb.Protocol;

namespace ParamDb.Storage.Local;

/// <summary>A single node's ownership: every range of its ring, in epoch 0, for good.</summary>
/// <param name="ranges">The node's ranges (<see cref="StoreOptions.Ring"/>).</param>
public sealed class LocalRangeOwnership(Ring ranges) : IRangeOwnership
{
    /// <inheritdoc />
    public ulong Epoch => 0;

    /// <inheritdoc />
    public Ring Ranges => ranges;

    /// <inheritdoc />
    public bool Owns(ulong tableHash, ulong key) => true;

    /// <inheritdoc />
    public event Action? Changed
    {
        add { }   // a single node's ownership never changes
        remove { }
    }
}
