using System.Runtime.CompilerServices;

namespace ParamDb.Storage;

/// <summary>The 64-bit mixer shared by the key hash and the initializer RNG.</summary>
internal static class Hashing
{
    /// <summary>Weyl increment of SplitMix64: 2^64 / φ, odd.</summary>
    public const ulong Golden = 0x9E3779B97F4A7C15;

    /// <summary>
    /// SplitMix64's finalizer (Stafford's variant 13): a bijection on 64 bits where every input bit flips each
    /// output bit with probability ≈ ½, so consecutive keys land in unrelated hash buckets.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix64(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
