using System.Runtime.CompilerServices;

namespace ParamDb.Storage;

/// <summary>
/// Exclusive latches, one per stripe of FASTER hash buckets, held around every write of a key (push, import,
/// system-record upsert) from before FASTER sees it until it is complete, pending disk reads included.
/// </summary>
/// <remarks>
/// Why: FASTER 2.6.5 can create a record twice when two threads write keys of one hash bucket at the same time,
/// in both of its locking modes. The later record hides the earlier one, so a push was lost and a row counted
/// twice (reproduced with 4 threads pushing the same new rows, about one run in five on a loaded machine;
/// <c>ConcurrencyTests</c>). With the latch, writes to keys that share a bucket take turns; writes to other
/// buckets, and all reads, run as before.
/// <para>A stripe is <c>hash &amp; (2^14 - 1)</c>: FASTER picks a bucket from the hash's low bits and never has
/// fewer than 2^14 buckets (<see cref="ParamStore"/>'s index sizing), so keys of one bucket share a stripe.</para>
/// <para>No deadlock: a thread waits for a latch only when it holds none (<see cref="ParamStore"/> completes its
/// pending writes and releases their latches first), and a holder never waits for anything but its own I/O.</para>
/// </remarks>
internal sealed class RowLatches
{
    /// <summary>Stripe count in bits; must not exceed the smallest FASTER index (2^14 buckets).</summary>
    public const int StripeBits = 14;

    private const int Mask = (1 << StripeBits) - 1;

    /// <summary>Per stripe, the managed thread id of its holder; 0 when free.</summary>
    private readonly int[] _owners = new int[1 << StripeBits];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int StripeOf(in RowKey key) => (int)RowKeyComparer.Hash(key) & Mask;

    /// <summary>
    /// Takes <paramref name="stripe"/> for <paramref name="owner"/> if it is free. True also when the owner holds it
    /// already; <paramref name="taken"/> says whether this call took it (and so must release it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnter(int stripe, int owner, out bool taken)
    {
        int holder = Interlocked.CompareExchange(ref _owners[stripe], owner, 0);
        taken = holder == 0;
        return taken || holder == owner;
    }

    /// <summary>Waits for <paramref name="stripe"/> and takes it. The caller must hold no other stripe.</summary>
    public void Enter(int stripe, int owner)
    {
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _owners[stripe], owner, 0) != 0) spin.SpinOnce();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit(int stripe) => Volatile.Write(ref _owners[stripe], 0);
}

/// <summary>
/// The stripes one thread holds for its pending writes in a batch (at most one per pending write), released
/// together once those writes completed. With no <see cref="RowLatches"/> (a read batch) every call is a no-op.
/// </summary>
internal struct HeldLatches(RowLatches? latches) : IDisposable
{
    private readonly int _owner = Environment.CurrentManagedThreadId;
    private int[]? _stripes;
    private int _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool TryEnter(int stripe, out bool taken) => latches!.TryEnter(stripe, _owner, out taken);

    public readonly void Enter(int stripe) => latches!.Enter(stripe, _owner);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Exit(int stripe) => latches!.Exit(stripe);

    /// <summary>Holds <paramref name="stripe"/> until <see cref="ExitAll"/>: its write went pending.</summary>
    public void Keep(int stripe)
    {
        _stripes ??= System.Buffers.ArrayPool<int>.Shared.Rent(64);
        if (_count == _stripes.Length)
        {
            int[] larger = System.Buffers.ArrayPool<int>.Shared.Rent(_count * 2);
            _stripes.AsSpan(0, _count).CopyTo(larger);
            System.Buffers.ArrayPool<int>.Shared.Return(_stripes);
            _stripes = larger;
        }
        _stripes[_count++] = stripe;
    }

    /// <summary>Releases every kept stripe; their writes must be complete.</summary>
    public void ExitAll()
    {
        for (int i = 0; i < _count; i++) latches!.Exit(_stripes![i]);
        _count = 0;
    }

    public void Dispose()
    {
        if (latches is null) return;
        ExitAll();
        if (_stripes is not null) System.Buffers.ArrayPool<int>.Shared.Return(_stripes);
        _stripes = null;
    }
}
