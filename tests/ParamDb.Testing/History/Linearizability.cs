namespace ParamDb.Testing.History;

/// <summary>The verdict on one key's history.</summary>
/// <param name="IsLinearizable">Whether some order of the operations, each taking effect at one instant between
/// its start and its end, explains every value read.</param>
/// <param name="Explanation">For a history that is not: the operation the search could not place and the values
/// the deepest order reached could offer it.</param>
public readonly record struct Verdict(bool IsLinearizable, string? Explanation);

/// <summary>
/// A per-key linearizability checker for <c>add</c> tables (Wing and Gong's search with Lowe's memoization, as in
/// "Testing for linearizability", Lowe 2017; the same algorithm Porcupine and Knossos use). The model is a
/// register that starts at an initial value: a push adds its argument, a pull must read the register.
/// </summary>
/// <remarks>
/// <para>An acknowledged operation took effect once, at an instant between its start and its end. A push whose
/// outcome is <see cref="Outcome.Unknown"/> may have taken effect at any instant after its start, or never: its
/// end is taken as +∞, and "never" is the same as "after every other operation", which constrains no read. A
/// <see cref="Outcome.Failed"/> push never took effect and is dropped, as is every pull that is not
/// <see cref="Outcome.Ok"/> (it read nothing).</para>
/// <para>So "the final value is the sum of the acknowledged pushes plus a subset of the unacknowledged ones" is
/// this check with a final pull, and "a value never goes backwards" follows from it for non-negative pushes.</para>
/// <para>Cost: linear for a history whose operations do not overlap; overlapping operations multiply the orders
/// to try, and the memo of (operations placed, value) seen before cuts every order that repeats one. A few
/// clients with one operation in flight each stay fast for thousands of operations per key.</para>
/// </remarks>
public static class Linearizability
{
    /// <summary>Checks one key's operations against an add register starting at <paramref name="initial"/>.</summary>
    public static Verdict Check(IReadOnlyList<Operation> history, long initial = 0)
    {
        ArgumentNullException.ThrowIfNull(history);
        var ops = new List<Operation>(history.Count);
        foreach (Operation op in history)
        {
            if (op.Outcome == Outcome.Failed || (op.Kind == OpKind.Pull && op.Outcome != Outcome.Ok)) continue;
            if (op.Outcome == Outcome.Ok && op.End < op.Start)
                throw new ArgumentException($"An operation ends before it starts: {op}.", nameof(history));
            ops.Add(op.Outcome == Outcome.Unknown ? op with { End = long.MaxValue } : op);
        }
        return new Search(ops, initial).Run();
    }

    /// <summary>A call or a return in the time-ordered list the search walks and unlinks from.</summary>
    private sealed class Entry
    {
        public int Op = -1;             // index into the operations; -1 for the list's head
        public bool IsCall;
        public Entry? Match;            // a call's return
        public Entry? Prev, Next;
    }

    /// <summary>One search; the state lives in fields so the loop reads as the algorithm does.</summary>
    private sealed class Search
    {
        private readonly List<Operation> _ops;
        private readonly Entry _head = new();
        private readonly long _initial;

        public Search(List<Operation> ops, long initial)
        {
            _ops = ops;
            _initial = initial;
            // Calls before returns at the same instant: two operations that touch in time count as concurrent,
            // the permissive reading (a clock tick is coarser than the order it cannot see).
            var events = new List<(long Time, int Order, int Op, bool IsCall)>(2 * ops.Count);
            for (int i = 0; i < ops.Count; i++)
            {
                events.Add((ops[i].Start, 0, i, true));
                events.Add((ops[i].End, 1, i, false));
            }
            events.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Order != b.Order ? a.Order.CompareTo(b.Order) : a.Op.CompareTo(b.Op));
            var calls = new Entry[ops.Count];
            Entry last = _head;
            foreach (var e in events)
            {
                var entry = new Entry { Op = e.Op, IsCall = e.IsCall, Prev = last };
                last.Next = entry;
                last = entry;
                if (e.IsCall) calls[e.Op] = entry;
                else calls[e.Op].Match = entry;
            }
        }

        public Verdict Run()
        {
            var placed = new ulong[(_ops.Count + 63) / 64];
            var seen = new HashSet<Memo>();
            var stack = new Stack<(Entry Call, long Value)>();
            long value = _initial;
            int deepest = -1;
            string? stuck = null;
            Entry? entry = _head.Next;
            while (_head.Next is not null)
            {
                if (entry!.IsCall)
                {
                    Operation op = _ops[entry.Op];
                    if (op.Kind == OpKind.Push || op.Result == value)
                    {
                        long next = op.Kind == OpKind.Push ? value + op.Argument : value;
                        placed[entry.Op >> 6] |= 1UL << (entry.Op & 63);
                        if (seen.Add(new Memo((ulong[])placed.Clone(), next)))
                        {
                            stack.Push((entry, value));
                            value = next;
                            Lift(entry);
                            entry = _head.Next;
                            continue;
                        }
                        placed[entry.Op >> 6] &= ~(1UL << (entry.Op & 63));
                    }
                    entry = entry.Next;
                    continue;
                }
                // A return whose operation is not placed yet: nothing before it fits this order; undo the last step.
                if (stack.Count > deepest)
                {
                    deepest = stack.Count;
                    stuck = $"after {stack.Count} of {_ops.Count} operations placed (value {value}), {_ops[entry.Op]} could not be placed before it returned";
                }
                if (stack.Count == 0) return new Verdict(false, stuck);
                (Entry call, long before) = stack.Pop();
                value = before;
                placed[call.Op >> 6] &= ~(1UL << (call.Op & 63));
                Unlift(call);
                entry = call.Next;
            }
            return new Verdict(true, null);
        }

        /// <summary>Unlinks a call and its return: the operation is placed.</summary>
        private static void Lift(Entry call)
        {
            call.Prev!.Next = call.Next;
            call.Next!.Prev = call.Prev;
            Entry ret = call.Match!;
            ret.Prev!.Next = ret.Next;
            if (ret.Next is not null) ret.Next.Prev = ret.Prev;
        }

        /// <summary>Links them back, in the reverse order of <see cref="Lift"/>.</summary>
        private static void Unlift(Entry call)
        {
            Entry ret = call.Match!;
            ret.Prev!.Next = ret;
            if (ret.Next is not null) ret.Next.Prev = ret;
            call.Prev!.Next = call;
            call.Next!.Prev = call;
        }
    }

    /// <summary>A configuration the search has been in: which operations are placed, and the register's value.</summary>
    private readonly struct Memo(ulong[] placed, long value) : IEquatable<Memo>
    {
        private readonly ulong[] _placed = placed;
        private readonly long _value = value;

        public bool Equals(Memo other) => _value == other._value && _placed.AsSpan().SequenceEqual(other._placed);

        public override bool Equals(object? obj) => obj is Memo other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            hash.Add(_value);
            foreach (ulong word in _placed) hash.Add(word);
            return hash.ToHashCode();
        }
    }
}
