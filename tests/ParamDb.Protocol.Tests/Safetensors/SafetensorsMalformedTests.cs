using System.Text;
using ParamDb.Protocol.Safetensors;
using static ParamDb.Protocol.Tests.Safetensors.SafetensorsFiles;

namespace ParamDb.Protocol.Tests.Safetensors;

/// <summary>
/// Malformed exports, each with the problem code the parser must give and a piece of detail that only its
/// failure produces, so a case cannot pass by failing for another reason.
/// </summary>
public sealed class SafetensorsMalformedTests
{
    private static readonly string LongName = new('x', 1000);

    /// <summary>name, header JSON, data bytes after the header, code, detail fragment.</summary>
    public static TheoryData<string, string, int, string, string> HeaderCases => new()
    {
        // JSON
        { "not an object", "[1,2]", Data, ProblemCodes.BadSafetensors, "must be a JSON object; it is an array" },
        { "a string", "\"keys\"", Data, ProblemCodes.BadSafetensors, "must be a JSON object; it is \"keys\"" },
        { "whitespace only", "        ", Data, ProblemCodes.BadSafetensors, "not valid JSON: The input does not contain any JSON tokens" },
        { "cut short", "{\"keys\":{\"dtype\"", Data, ProblemCodes.BadSafetensors, "not valid JSON: Expected a value, but instead reached end of data" },
        { "more JSON after the object", Header(Meta, Keys, Values) + " {}", Data, ProblemCodes.BadSafetensors, "is invalid after a single JSON value" },
        { "a comment", "/* x */" + Header(Meta, Keys, Values), Data, ProblemCodes.BadSafetensors, "'/' is an invalid start of a value" },
        { "a trailing comma", "{" + Meta + "," + Keys + "," + Values + ",}", Data, ProblemCodes.BadSafetensors, "trailing comma" },
        // Entries
        { "an extra tensor", Header(Meta, Keys, Values, J("'bias':{'dtype':'F32','shape':[0],'data_offsets':[48,48]}")), Data, ProblemCodes.BadSafetensors, "holds a tensor \"bias\"" },
        { "a tensor with a 1000-character name", Header(Meta, Keys, Values, J($"'{LongName}':{{}}")), Data, ProblemCodes.BadSafetensors, "…\" (1000 characters)" },
        { "no keys", Header(Meta, Values), Data, ProblemCodes.BadSafetensors, "has no tensor \"keys\"" },
        { "no values", Header(Meta, Keys), Data, ProblemCodes.BadSafetensors, "has no tensor \"values\"" },
        { "keys twice", Header(Meta, Keys, Values, Keys), Data, ProblemCodes.BadSafetensors, "names tensor \"keys\" twice" },
        { "values twice", Header(Meta, Values, Keys, Values), Data, ProblemCodes.BadSafetensors, "names tensor \"values\" twice" },
        { "metadata twice", Header(Meta, Keys, Meta, Values), Data, ProblemCodes.BadSafetensors, "has __metadata__ twice" },
        // Tensor entries
        { "keys is not an object", Header(Meta, J("'keys':[3]"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" must be an object with dtype, shape and data_offsets; it is an array" },
        { "keys of dtype I64", Header(Meta, J("'keys':{'dtype':'I64','shape':[3],'data_offsets':[0,24]}"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" has dtype \"I64\"; it must be U64" },
        { "values of dtype F64", Header(Meta, Keys, J("'values':{'dtype':'F64','shape':[3,2],'data_offsets':[24,72]}")), 72, ProblemCodes.BadSafetensors, "\"values\" has dtype \"F64\"; it must be F32" },
        { "dtype in lower case", Header(Meta, Keys, J("'values':{'dtype':'f32','shape':[3,2],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "has dtype \"f32\"" },
        { "dtype not a string", Header(Meta, Keys, J("'values':{'dtype':4,'shape':[3,2],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "\"values\" has dtype 4;" },
        { "no dtype", Header(Meta, Keys, J("'values':{'shape':[3,2],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "\"values\" has no dtype" },
        { "no shape", Header(Meta, Keys, J("'values':{'dtype':'F32','data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "\"values\" has no shape" },
        { "no data_offsets", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2]}")), Data, ProblemCodes.BadSafetensors, "\"values\" has no data_offsets" },
        { "an unknown field", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[24,48],'byte_order':'big'}")), Data, ProblemCodes.BadSafetensors, "unknown field \"byte_order\"" },
        { "dtype twice", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'dtype':'U64','data_offsets':[0,24]}"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" has dtype twice" },
        { "shape twice", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'shape':[3],'data_offsets':[0,24]}"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" has shape twice" },
        { "data_offsets twice", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[0,24],'data_offsets':[0,24]}"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" has data_offsets twice" },
        // Shapes
        { "shape not an array", Header(Meta, J("'keys':{'dtype':'U64','shape':3,'data_offsets':[0,24]}"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" has shape 3; it must be an array" },
        { "scalar keys", Header(Meta, J("'keys':{'dtype':'U64','shape':[],'data_offsets':[0,8]}"), J("'values':{'dtype':'F32','shape':[1,2],'data_offsets':[8,16]}")), 16, ProblemCodes.BadSafetensors, "\"keys\" has rank 0" },
        { "keys of rank 2", Header(Meta, J("'keys':{'dtype':'U64','shape':[3,1],'data_offsets':[0,24]}"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" has rank 2; it must be one-dimensional" },
        { "values of rank 1", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[6],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "\"values\" has rank 1; it must be two-dimensional" },
        { "values of rank 3", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2,1],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "\"values\" has rank 3" },
        { "a negative size", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,-2],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "has -2 in its shape" },
        { "a fractional size", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2.0],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "has 2.0 in its shape" },
        { "a size in exponent form", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2e0],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "has 2e0 in its shape" },
        { "a size as a string", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,'2'],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "has \"2\" in its shape" },
        { "a size of 2^64", Header(Meta, J("'keys':{'dtype':'U64','shape':[18446744073709551616],'data_offsets':[0,24]}"), Values), Data, ProblemCodes.BadSafetensors, "has 18446744073709551616 in its shape" },
        { "keys and values of different n", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[4,2],'data_offsets':[24,56]}")), 56, ProblemCodes.BadSafetensors, "\"keys\" has 3 rows but \"values\" has 4" },
        { "dim 0", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,0],'data_offsets':[24,24]}")), 24, ProblemCodes.BadSafetensors, "has dim 0 (shape [3, 0])" },
        { "dim over 65536", Header(Meta, J("'keys':{'dtype':'U64','shape':[1],'data_offsets':[0,8]}"), J("'values':{'dtype':'F32','shape':[1,65537],'data_offsets':[8,262156]}")), 262156, ProblemCodes.BadSafetensors, "has dim 65537 (shape [1, 65537])" },
        // Offsets
        { "data_offsets not an array", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':'0-24'}"), Values), Data, ProblemCodes.BadSafetensors, "has data_offsets \"0-24\"; it must be [begin, end]" },
        { "one offset", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[24]}"), Values), Data, ProblemCodes.BadSafetensors, "has 1 data_offsets" },
        { "three offsets", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[0,24,48]}"), Values), Data, ProblemCodes.BadSafetensors, "has 3 data_offsets" },
        { "a negative offset", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[-24,0]}"), Values), Data, ProblemCodes.BadSafetensors, "has -24 in its data_offsets" },
        { "keys ending before they start", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[24,0]}"), Values), Data, ProblemCodes.BadSafetensors, "\"keys\" has data_offsets [24, 0]: the end is before the start" },
        { "values ending before they start", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[48,24]}")), Data, ProblemCodes.BadSafetensors, "\"values\" has data_offsets [48, 24]: the end is before the start" },
        { "values before keys", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[24,48]}"), J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[0,24]}")), Data, ProblemCodes.BadSafetensors, "values' bytes come before the keys'" },
        { "a hole before the keys", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[8,32]}"), J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[32,56]}")), 56, ProblemCodes.BadSafetensors, "\"keys\" starts at byte 8 of the data" },
        { "keys too short for their shape", Header(Meta, J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[0,16]}"), J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[16,40]}")), 40, ProblemCodes.BadSafetensors, "[0, 16], 16 bytes; U64 [3] needs 24" },
        { "keys whose size overflows 2^64", Header(Meta, J("'keys':{'dtype':'U64','shape':[18446744073709551615],'data_offsets':[0,24]}"), J("'values':{'dtype':'F32','shape':[18446744073709551615,2],'data_offsets':[24,48]}")), Data, ProblemCodes.BadSafetensors, "U64 [18446744073709551615] needs 147573952589676412920" },
        { "a hole between keys and values", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[32,56]}")), 56, ProblemCodes.BadSafetensors, "A hole of 8 bytes between \"keys\" (ends at 24) and \"values\" (starts at 32)" },
        { "keys and values overlapping", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[16,40]}")), 40, ProblemCodes.BadSafetensors, "overlap by 8 bytes" },
        { "values too short for their shape", Header(Meta, Keys, J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[24,40]}")), 40, ProblemCodes.BadSafetensors, "[24, 40], 16 bytes; F32 [3, 2] needs 24" },
        // File length
        { "data cut short", Header(Meta, Keys, Values), Data - 1, ProblemCodes.Truncated, "promises 272 bytes (8 + 216 header + 48 data for 3 rows of dim 2); the file has 271." },
        { "no data at all", Header(Meta, Keys, Values), 0, ProblemCodes.Truncated, "the file has 224." },
        { "trailing bytes", Header(Meta, Keys, Values), Data + 3, ProblemCodes.LengthMismatch, "3 trailing bytes" },
        // Metadata
        { "no metadata", Header(Keys, Values), Data, ProblemCodes.BadSafetensors, "has no __metadata__" },
        { "metadata not an object", Header(J("'__metadata__':'{}'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "__metadata__ must be an object of strings; it is \"{}\"" },
        { "a number in the metadata", Header(MetaWith(@"'paramdb.format':1,'paramdb.schema':'{\'dim\':2}'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "__metadata__[\"paramdb.format\"] is 1; metadata values must be strings" },
        { "an object in another producer's metadata", Header(MetaWith(@"'paramdb.format':'1','paramdb.schema':'{\'dim\':2}','extra':{}"), Keys, Values), Data, ProblemCodes.BadSafetensors, "__metadata__[\"extra\"] is an object" },
        { "no format", Header(MetaWith(@"'paramdb.schema':'{\'dim\':2}'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "has no \"paramdb.format\"" },
        { "format 2", Header(MetaWith(@"'paramdb.format':'2','paramdb.schema':'{\'dim\':2}'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "[\"paramdb.format\"] is \"2\"; this server reads format 1" },
        { "format twice", Header(MetaWith(@"'paramdb.format':'1','paramdb.format':'1','paramdb.schema':'{\'dim\':2}'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "has \"paramdb.format\" twice" },
        { "no schema", Header(MetaWith("'paramdb.format':'1','paramdb.table':'t'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "has no \"paramdb.schema\"" },
        { "schema twice", Header(MetaWith(@"'paramdb.format':'1','paramdb.schema':'{\'dim\':2}','paramdb.schema':'{\'dim\':2}'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "has \"paramdb.schema\" twice" },
        { "schema not JSON", Header(MetaSchema("dim=2"), Keys, Values), Data, ProblemCodes.BadSafetensors, "[\"paramdb.schema\"] is not a table schema:" },
        { "schema null", Header(MetaSchema("null"), Keys, Values), Data, ProblemCodes.BadSafetensors, "[\"paramdb.schema\"] is null" },
        { "schema with an unknown updater", Header(MetaSchema(@"{\'dim\':2,\'updater\':{\'kind\':\'momentum\'}}"), Keys, Values), Data, ProblemCodes.BadSafetensors, "is not a valid schema: updater.kind must be" },
        { "schema of another dim", Header(MetaSchema(@"{\'dim\':4}"), Keys, Values), Data, ProblemCodes.BadSafetensors, "has dim 4 but tensor \"values\" has dim 2" },
        { "table name with a slash", Header(MetaWith(@"'paramdb.format':'1','paramdb.schema':'{\'dim\':2}','paramdb.table':'a/b'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "[\"paramdb.table\"] is \"a/b\", not a table name" },
        { "table name ..", Header(MetaWith(@"'paramdb.format':'1','paramdb.schema':'{\'dim\':2}','paramdb.table':'..'"), Keys, Values), Data, ProblemCodes.BadSafetensors, "[\"paramdb.table\"] is \"..\", not a table name" },
    };

    [Theory]
    [MemberData(nameof(HeaderCases))]
    public void MalformedHeaderIsRejectedWithItsCodeAndDetail(string name, string json, int data, string code, string fragment)
    {
        byte[] file = Build(json, data);

        bool ok = SafetensorsHeader.TryParse(file, file.Length, out var header, out var error);

        Assert.False(ok, $"{name}: parsed as {header?.Count} rows");
        Assert.Null(header);
        Assert.Equal(code, error.Code);
        Assert.Equal(400, error.Status);
        Assert.Contains(fragment, error.Detail);
    }

    [Fact]
    public void EachHeaderCaseFailsForItsOwnReason()
    {
        // A fragment that two cases' details both contain would let one pass by the other's failure.
        var fragments = new List<(string Name, string Fragment, string Detail)>();
        foreach (var row in HeaderCases)
        {
            byte[] file = Build((string)row[1], (int)row[2]);
            Assert.False(SafetensorsHeader.TryParse(file, file.Length, out _, out var error));
            fragments.Add(((string)row[0], (string)row[4], error.Detail));
        }
        foreach (var a in fragments)
            foreach (var b in fragments)
                Assert.True(a.Name == b.Name || !b.Detail.Contains(a.Fragment), $"\"{a.Name}\"'s fragment also matches \"{b.Name}\": {b.Detail}");
    }

    /// <summary>name, the file's first bytes, the file's length, code, detail fragment.</summary>
    public static TheoryData<string, string, long, string, string> LengthCases => new()
    {
        { "an empty file", "", 0, ProblemCodes.Truncated, "the file has 0 bytes" },
        { "a file of 3 bytes", "10 01 00", 3, ProblemCodes.Truncated, "the file has 3 bytes" },
        { "header length over the reference limit", "01 E1 F5 05 00 00 00 00", 200_000_000, ProblemCodes.BadSafetensors, "100000001 bytes, over the limit of 100000000" },
        { "header length 2^64-1", "FF FF FF FF FF FF FF FF", 1000, ProblemCodes.BadSafetensors, "18446744073709551615 bytes, over the limit" },
        { "a KV block read as safetensors", "50 44 42 31 01 00 02 00", 1000, ProblemCodes.BadSafetensors, "562955074815056 bytes, over the limit of 100000000; is this a safetensors file?" },
        { "header length 0", "00 00 00 00 00 00 00 00", 1000, ProblemCodes.BadSafetensors, "0 bytes, too short for a JSON object" },
        { "header length 1", "01 00 00 00 00 00 00 00 7B", 9, ProblemCodes.BadSafetensors, "1 bytes, too short for a JSON object" },
        { "header length past the end of the file", "10 01 00 00 00 00 00 00 7B", 100, ProblemCodes.Truncated, "272 bytes, past the end of the 100-byte file" },
    };

    [Theory]
    [MemberData(nameof(LengthCases))]
    public void BadHeaderLengthIsRejectedBeforeAnyJson(string name, string hex, long fileLength, string code, string fragment)
    {
        byte[] prefix = Hex(hex);

        bool ok = SafetensorsHeader.TryParse(prefix, fileLength, out var header, out var error);
        bool okLength = SafetensorsHeader.TryReadHeaderLength(prefix, fileLength, out int n, out var lengthError);

        Assert.False(ok, name);
        Assert.Null(header);
        Assert.False(okLength);
        Assert.Equal(0, n);
        Assert.Equal(code, error.Code);
        Assert.Contains(fragment, error.Detail);
        Assert.Equal(error, lengthError);
    }

    [Fact]
    public void PrefixShorterThanTheHeaderIsTruncatedNotInvalid()
    {
        byte[] file = Build(Header(Meta, Keys, Values), Data);

        Assert.False(SafetensorsHeader.TryParse(file.AsSpan(0, 100), file.Length, out _, out var error));

        Assert.Equal(ProblemCodes.Truncated, error.Code);
        Assert.Contains("only 92 were given", error.Detail);
    }

    [Fact]
    public void FirstEightBytesAloneAreNotEnoughForTheLength()
    {
        Assert.False(SafetensorsHeader.TryReadHeaderLength([0x10, 0x01], 1000, out _, out var error));

        Assert.Equal(ProblemCodes.Truncated, error.Code);
        Assert.Contains("first 8 bytes; got 2", error.Detail);
    }

    [Fact]
    public void HeaderThatIsNotUtf8IsRejected()
    {
        string json = Header(Meta, Keys, Values);
        byte[] file = Build(json, Data);
        file[8 + json.IndexOf("\"paramdb.table\":\"t\"", StringComparison.Ordinal) + 17] = 0xFF; // the table name's one character

        Assert.False(SafetensorsHeader.TryParse(file, file.Length, out _, out var error));

        Assert.Equal(ProblemCodes.BadSafetensors, error.Code);
        Assert.Equal("The header is not valid UTF-8.", error.Detail);
    }
}
