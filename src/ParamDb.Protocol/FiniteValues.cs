using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ParamDb.Protocol;

/// <summary>
/// Finds NaN and ±Infinity in pushed values. A float32 is non-finite exactly when its 8 exponent bits are all
/// ones, <c>(bits &amp; 0x7F800000) == 0x7F800000</c>, so the scan is an AND and a compare per lane with no
/// floating-point work: on AVX2, 32 floats per loop turn. It runs on every push before anything is applied, so
/// its common case, no hit, touches each value once and branches once per 32 floats; only on a hit does a
/// scalar pass find the first bad element (at most 31 more compares).
/// </summary>
public static class FiniteValues
{
    /// <summary>The exponent field of an IEEE 754 binary32.</summary>
    private const uint ExponentMask = 0x7F80_0000;

    /// <summary>The index of the first NaN or ±Infinity in <paramref name="values"/>, or -1 when all are finite.</summary>
    /// <param name="values">Any floats; read, never written.</param>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        ReadOnlySpan<uint> bits = MemoryMarshal.Cast<float, uint>(values);
        ref uint start = ref MemoryMarshal.GetReference(bits);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // Four vectors per turn: one OR-ed compare result and one branch for 4 × 8 floats on AVX2.
            int step = Vector<uint>.Count * 4;
            var mask = new Vector<uint>(ExponentMask);
            for (int last = bits.Length - step; i <= last; i += step)
            {
                Vector<uint> hit =
                    Vector.Equals(Vector.LoadUnsafe(ref start, (nuint)i) & mask, mask)
                    | Vector.Equals(Vector.LoadUnsafe(ref start, (nuint)(i + Vector<uint>.Count)) & mask, mask)
                    | Vector.Equals(Vector.LoadUnsafe(ref start, (nuint)(i + 2 * Vector<uint>.Count)) & mask, mask)
                    | Vector.Equals(Vector.LoadUnsafe(ref start, (nuint)(i + 3 * Vector<uint>.Count)) & mask, mask);
                if (hit != Vector<uint>.Zero) break;   // the scalar loop below finds it within this turn's lanes
            }
        }
        for (; i < bits.Length; i++)
            if ((Unsafe.Add(ref start, i) & ExponentMask) == ExponentMask) return i;
        return -1;
    }

    /// <summary>
    /// Checks that a push's rows hold no NaN or ±Infinity. On a hit the 400 <c>non_finite_value</c> names the
    /// first bad row by its index and key, the element within the row, and the value.
    /// </summary>
    /// <param name="table">The table's name, for the detail.</param>
    /// <param name="values">Row-major, <paramref name="dim"/> floats per row.</param>
    /// <param name="dim">Floats per row, ≥ 1.</param>
    /// <param name="range">True when the rows are the dense range from <paramref name="first"/>.</param>
    /// <param name="first">The first key of a range.</param>
    /// <param name="keys">The explicit keys (as the wire holds them, little-endian) when not a range.</param>
    /// <param name="fromJson">True for a JSON body, whose detail then explains that numbers beyond float32 read as ±Infinity.</param>
    /// <param name="error">The rejection when false.</param>
    public static bool Check(string table, ReadOnlySpan<float> values, int dim, bool range, ulong first, ReadOnlySpan<ulong> keys, bool fromJson, out ProtocolError error)
    {
        int at = IndexOfNonFinite(values);
        if (at < 0)
        {
            error = default;
            return true;
        }
        int row = at / dim, element = at % dim;
        ulong key = range ? first + (ulong)row : BitConverter.IsLittleEndian ? keys[row] : System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(keys[row]);
        float value = values[at];
        string what = Name(value);
        string why = fromJson && !float.IsNaN(value)
            ? $" (a JSON number beyond float32's range, ±{float.MaxValue:R}, reads as {what})"
            : "";
        error = new ProtocolError(400, ProblemCodes.NonFiniteValue,
            $"Row {row} (key {key}), element {element} is {what}{why}; table '{table}' stores only finite values. Nothing was applied. Create the table with \"allowNonFinite\": true to store NaN and ±Infinity.");
        return false;
    }

    /// <summary>How a detail names a non-finite value: <c>NaN</c>, <c>+Infinity</c> or <c>-Infinity</c>.</summary>
    public static string Name(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity";
}
