namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// SplitMix64: a tiny, fast generator whose output depends only on (seed, stream) and the number of draws, so the
/// data, the hidden weights and every straggler delay are the same on every run and every machine
/// (<see cref="Random"/>'s seeded sequence is not promised to stay the same across .NET versions).
/// </summary>
internal struct Rng
{
    private const ulong Golden = 0x9E3779B97F4A7C15;
    private ulong _state;

    /// <summary>An independent stream per (seed, stream): each shard, the held-out set and each delay get their own.</summary>
    public Rng(ulong seed, ulong stream) => _state = Mix(seed ^ Mix(stream * Golden + Golden));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state += Golden;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1), 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [low, high).</summary>
    public double NextDouble(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Uniform integer in [low, high).</summary>
    public int NextInt(int low, int high) => low + (int)(NextDouble() * (high - low));

    /// <summary>Standard normal (Box–Muller; the second value is dropped to keep the draw count simple).</summary>
    public double NextNormal()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]: log(0) would be -∞
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
