using ParamDb.Protocol;

namespace ParamDb.Protocol.Tests;

/// <summary>Malformed KV blocks, each with the problem code and HTTP status the parser must give.</summary>
public sealed class KvBlockMalformedTests
{
    // Header pieces, little-endian, named so each row below reads as its layout.
    private const string Magic = "50 44 42 31 ";
    private const string V1 = "01 00 ";
    private const string NoFlags = "00 00 ", RangeFlag = "01 00 ", ValuesFlag = "02 00 ", RangeValues = "03 00 ";
    private const string Dim1 = "01 00 00 00 ", Dim2 = "02 00 00 00 ";
    private const string Reserved = "00 00 00 00 ";
    private const string Count0 = "00 00 00 00 00 00 00 00 ", Count1 = "01 00 00 00 00 00 00 00 ", Count2 = "02 00 00 00 00 00 00 00 ";
    private const string Key1 = "01 00 00 00 00 00 00 00 ", Key5 = "05 00 00 00 00 00 00 00 ";
    private const string One = "00 00 80 3F ";

    /// <summary>name, block, expect, maxKeys, code, status.</summary>
    public static TheoryData<string, string, KvExpect, int, string, int> Cases => new()
    {
        { "bad magic", "50 44 42 32 " + V1 + NoFlags + Dim1 + Reserved + Count0, KvExpect.Any, 10, ProblemCodes.BadMagic, 400 },
        { "magic of another format", "7B 22 6B 65 79 73 22 3A 5B 31 5D 7D 20 20 20 20 20 20 20 20 20 20 20 20", KvExpect.Any, 10, ProblemCodes.BadMagic, 400 },
        { "version 2", Magic + "02 00 " + NoFlags + Dim1 + Reserved + Count0, KvExpect.Any, 10, ProblemCodes.UnsupportedVersion, 400 },
        { "version 0", Magic + "00 00 " + NoFlags + Dim1 + Reserved + Count0, KvExpect.Any, 10, ProblemCodes.UnsupportedVersion, 400 },
        { "unknown flag bit 2", Magic + V1 + "04 00 " + Dim1 + Reserved + Count0, KvExpect.Any, 10, ProblemCodes.BadFlags, 400 },
        { "unknown flag bit 15", Magic + V1 + "02 80 " + Dim1 + Reserved + Count0, KvExpect.Any, 10, ProblemCodes.BadFlags, 400 },
        { "non-zero reserved", Magic + V1 + NoFlags + Dim1 + "01 00 00 00 " + Count0, KvExpect.Any, 10, ProblemCodes.BadFlags, 400 },
        { "reserved high byte", Magic + V1 + NoFlags + Dim1 + "00 00 00 80 " + Count0, KvExpect.Any, 10, ProblemCodes.BadFlags, 400 },
        { "push without VALUES", Magic + V1 + NoFlags + Dim1 + Reserved + Count1 + Key1, KvExpect.Values, 10, ProblemCodes.BadFlags, 400 },
        { "pull request with VALUES", Magic + V1 + ValuesFlag + Dim1 + Reserved + Count1 + Key1 + One, KvExpect.NoValues, 10, ProblemCodes.BadFlags, 400 },
        { "truncated header (20 bytes)", Magic + V1 + NoFlags + Dim1 + Reserved + "00 00 00 00", KvExpect.Any, 10, ProblemCodes.Truncated, 400 },
        { "empty body", "", KvExpect.Any, 10, ProblemCodes.Truncated, 400 },
        { "truncated keys", Magic + V1 + NoFlags + Dim1 + Reserved + Count2 + Key1, KvExpect.Any, 10, ProblemCodes.Truncated, 400 },
        { "truncated values", Magic + V1 + ValuesFlag + Dim2 + Reserved + Count1 + Key1 + One, KvExpect.Values, 10, ProblemCodes.Truncated, 400 },
        { "range without its first key", Magic + V1 + RangeFlag + Dim1 + Reserved + Count1, KvExpect.Any, 10, ProblemCodes.Truncated, 400 },
        { "extra bytes after the header", Magic + V1 + NoFlags + Dim1 + Reserved + Count0 + "00 00 00 00", KvExpect.Any, 10, ProblemCodes.LengthMismatch, 400 },
        { "extra bytes after the values", Magic + V1 + ValuesFlag + Dim1 + Reserved + Count1 + Key1 + One + One, KvExpect.Values, 10, ProblemCodes.LengthMismatch, 400 },
        { "values on a pull-shaped block read as extra", Magic + V1 + NoFlags + Dim1 + Reserved + Count1 + Key1 + One, KvExpect.NoValues, 10, ProblemCodes.LengthMismatch, 400 },
        { "unsorted keys", Magic + V1 + NoFlags + Dim1 + Reserved + Count2 + Key5 + Key1, KvExpect.NoValues, 10, ProblemCodes.UnsortedKeys, 400 },
        { "duplicate keys", Magic + V1 + NoFlags + Dim1 + Reserved + Count2 + Key5 + Key5, KvExpect.NoValues, 10, ProblemCodes.DuplicateKeys, 400 },
        { "unsorted keys in a push", Magic + V1 + ValuesFlag + Dim1 + Reserved + Count2 + Key5 + Key1 + One + One, KvExpect.Values, 10, ProblemCodes.UnsortedKeys, 400 },
        { "count over the limit", Magic + V1 + NoFlags + Dim1 + Reserved + Count2 + Key1 + Key5, KvExpect.NoValues, 1, ProblemCodes.TooManyKeys, 413 },
        { "count of 2^64-1", Magic + V1 + NoFlags + Dim1 + Reserved + "FF FF FF FF FF FF FF FF", KvExpect.Any, int.MaxValue, ProblemCodes.TooManyKeys, 413 },
        { "count × dim overflows", Magic + V1 + RangeValues + "FF FF FF FF " + Reserved + "00 00 00 01 00 00 00 00 " + Key1, KvExpect.Values, int.MaxValue, ProblemCodes.TooManyKeys, 413 },
        { "count × 8 overflows", Magic + V1 + NoFlags + Dim1 + Reserved + "00 00 00 7F 00 00 00 00", KvExpect.NoValues, int.MaxValue, ProblemCodes.TooManyKeys, 413 },
        { "range running past 2^64", Magic + V1 + RangeFlag + Dim1 + Reserved + Count2 + "FF FF FF FF FF FF FF FF", KvExpect.NoValues, 10, ProblemCodes.KeyOutOfRange, 400 },
        { "range with values running past 2^64", Magic + V1 + RangeValues + Dim1 + Reserved + Count2 + "FF FF FF FF FF FF FF FF " + One + One, KvExpect.Values, 10, ProblemCodes.KeyOutOfRange, 400 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MalformedBlockIsRejectedWithItsCodeAndStatus(string name, string hex, KvExpect expect, int maxKeys, string code, int status)
    {
        byte[] block = KvBlockGoldenTests.Hex(hex);

        bool ok = KvBlock.TryParse(block, expect, maxKeys, out var parsed, out var error);

        Assert.False(ok, $"{name}: parsed as {parsed.Count} rows");
        Assert.Equal(code, error.Code);
        Assert.Equal(status, error.Status);
        Assert.False(string.IsNullOrWhiteSpace(error.Detail));
        Assert.False(error.IsNone);
        Assert.Equal(default(KvBlock), parsed);
    }

    [Fact]
    public void UnsortedKeysDetailNamesTheOffendingRow()
    {
        Assert.False(KvBlock.CheckAscending([1, 2, 9, 3], out var error));

        Assert.Equal(ProblemCodes.UnsortedKeys, error.Code);
        Assert.Contains("row 3", error.Detail);
        Assert.Contains("3 after 9", error.Detail);
    }

    [Theory]
    [InlineData(new ulong[0])]
    [InlineData(new ulong[] { 0 })]
    [InlineData(new ulong[] { 0, 1, ulong.MaxValue })]
    public void CheckAscendingAcceptsStrictlyAscendingKeys(ulong[] keys)
    {
        Assert.True(KvBlock.CheckAscending(keys, out var error));
        Assert.True(error.IsNone);
    }

    [Fact]
    public void CheckAscendingComparesKeysAsUnsignedNumbers()
    {
        // 2^63 would sort before 1 if compared as signed longs.
        Assert.True(KvBlock.CheckAscending([1, 1UL << 63], out _));
        Assert.False(KvBlock.CheckAscending([1UL << 63, 1], out var error));
        Assert.Equal(ProblemCodes.UnsortedKeys, error.Code);
    }
}
