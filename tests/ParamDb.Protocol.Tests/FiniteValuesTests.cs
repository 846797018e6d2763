using ParamDb.Protocol;

namespace ParamDb.Protocol.Tests;

public sealed class FiniteValuesTests
{
    private static readonly float[] Bad =
    [
        float.NaN, float.PositiveInfinity, float.NegativeInfinity,
        BitConverter.Int32BitsToSingle(0x7F80_0001),            // signalling NaN
        BitConverter.Int32BitsToSingle(unchecked((int)0xFFFF_FFFF)),  // NaN, every bit set
    ];

    /// <summary>Lengths around the 32-float vector turn (AVX2: 4 × 8), so hits land in the vector body and the tail.</summary>
    public static TheoryData<int> Lengths() => new() { 0, 1, 7, 31, 32, 33, 63, 64, 65, 100, 1_000, 4_099 };

    [Theory]
    [MemberData(nameof(Lengths))]
    public void EveryPositionOfEveryNonFiniteValueIsFoundFirst(int length)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = i % 3 == 0 ? float.MaxValue : i % 3 == 1 ? -float.Epsilon : i * 1e30f;
        Assert.Equal(-1, FiniteValues.IndexOfNonFinite(values));
        foreach (float bad in Bad)
        {
            for (int at = 0; at < length; at++)
            {
                values[at] = bad;
                Assert.Equal(at, FiniteValues.IndexOfNonFinite(values));
                if (at + 5 < length)
                {
                    values[at + 5] = float.NaN;   // a second hit later in the same turn does not hide the first
                    Assert.Equal(at, FiniteValues.IndexOfNonFinite(values));
                    values[at + 5] = 0;
                }
                values[at] = 1;
            }
        }
    }

    [Fact]
    public void CheckNamesTheRowItsKeyAndTheElement()
    {
        float[] values = [1, 2, 3, 4, 5, float.NegativeInfinity];
        Assert.True(FiniteValues.Check("t", values.AsSpan(0, 4), 2, false, 0, [7, 9], false, out _));
        Assert.False(FiniteValues.Check("t", values, 2, false, 0, [7, 9, 11], false, out var error));
        Assert.Equal(400, error.Status);
        Assert.Equal(ProblemCodes.NonFiniteValue, error.Code);
        Assert.StartsWith("Row 2 (key 11), element 1 is -Infinity;", error.Detail);
        Assert.False(FiniteValues.Check("t", values, 3, true, 100, default, true, out error));
        Assert.StartsWith("Row 1 (key 101), element 2 is -Infinity (a JSON number beyond float32's range", error.Detail);
    }
}
