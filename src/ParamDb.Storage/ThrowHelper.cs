using System.Diagnostics.CodeAnalysis;

namespace ParamDb.Storage;

/// <summary>Throw helpers kept out of line so the batch loops stay small.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ValuesLength(string paramName, long expected, int actual) =>
        throw new ArgumentException($"Expected {expected} floats (rows × dim); got {actual}.", paramName);

    [DoesNotReturn]
    public static void RangeOverflow(ulong first, int count) =>
        throw new ArgumentOutOfRangeException(nameof(count), $"Range {first} + {count} rows passes 2^64.");
}
