using System.Net.Http.Json;
using ParamDb.Protocol;
using ParamDb.Protocol.Stream;
using ParamDb.Testing;

namespace ParamDb.Server.Tests;

/// <summary>
/// NaN and ±Infinity (and, in JSON, numbers beyond float32) are refused with <c>non_finite_value</c> naming the first
/// bad row, on REST and on the stream, plain and LZ4, unless the table's schema says <c>"allowNonFinite": true</c>.
/// A refused push changes nothing.
/// </summary>
public sealed class NonFiniteTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;
    private const int Dim = 3;
    private static readonly ulong[] Keys = [10, 20, 30, 40, 50];

    /// <summary>Row i element j holds 100·i + j: 15 finite values, seeded before each refused push.</summary>
    private static float[] Seed()
    {
        var values = new float[Keys.Length * Dim];
        for (int i = 0; i < values.Length; i++) values[i] = 100 * (i / Dim) + i % Dim;
        return values;
    }

    /// <summary>Finite values of ones with <paramref name="bad"/> at row <paramref name="row"/>, element <paramref name="element"/>.</summary>
    private static float[] With(float bad, int row, int element)
    {
        float[] values = Wire.Fill(Keys.Length * Dim, 1f);
        values[row * Dim + element] = bad;
        return values;
    }

    private async Task<string> SeededTableAsync(string schema = """{"dim":3}""")
    {
        var name = ServerFixture.NewTable("nf");
        await Wire.CreateTableAsync(Http, name, schema);
        await Wire.PushAsync(Http, name, Keys, Seed(), Dim);
        return name;
    }

    /// <summary>Pulls the rows back: a refused push must have left every one as seeded.</summary>
    private async Task AssertUnchangedAsync(string name)
    {
        Assert.Equal(Seed(), await Wire.PullAsync(Http, name, Keys));
        Assert.Equal(Keys.Length, (await Http.GetFromJsonAsync($"/v1/tables/{name}", ProtocolJson.Default.TableInfo))!.Rows);
    }

    /// <summary>case, value, row, element, layout (keys | range), LZ4.</summary>
    public static TheoryData<string, float, int, int, bool, bool> BinaryCases() => new()
    {
        { "NaN, first row", float.NaN, 0, 0, false, false },
        { "NaN, middle row", float.NaN, 2, 1, false, false },
        { "NaN, last row, last element", float.NaN, 4, 2, false, false },
        { "+Inf, first row", float.PositiveInfinity, 0, 2, false, false },
        { "+Inf, middle row", float.PositiveInfinity, 2, 0, false, false },
        { "+Inf, last row", float.PositiveInfinity, 4, 1, false, false },
        { "-Inf, first row", float.NegativeInfinity, 0, 1, false, false },
        { "-Inf, middle row", float.NegativeInfinity, 2, 2, false, false },
        { "-Inf, last row", float.NegativeInfinity, 4, 0, false, false },
        { "NaN with payload bits, middle row", BitConverter.Int32BitsToSingle(unchecked((int)0xFFC0_1234)), 3, 1, false, false },
        { "NaN, dense range", float.NaN, 3, 2, true, false },
        { "-Inf, dense range, last row", float.NegativeInfinity, 4, 2, true, false },
        { "NaN, LZ4", float.NaN, 1, 1, false, true },
        { "+Inf, LZ4, last row", float.PositiveInfinity, 4, 2, false, true },
        { "-Inf, LZ4, dense range", float.NegativeInfinity, 0, 0, true, true },
    };

    private static byte[] Block(float[] values, bool range)
    {
        if (!range) return Wire.PushBlock(Keys, values, Dim);
        var block = new byte[KvBlockWriter.SizeOf(true, Keys.Length, Dim, true)];
        KvBlockWriter.WriteRange(block, 10, Keys.Length, values, Dim, withValues: true);
        return block;
    }

    /// <summary>The key of <paramref name="row"/>: the explicit keys 10, 20, …, or the range 10, 11, ….</summary>
    private static ulong KeyOf(int row, bool range) => range ? 10 + (ulong)row : Keys[row];

    private static string What(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity";

    [Theory]
    [MemberData(nameof(BinaryCases))]
    public async Task ABinaryPushWithANonFiniteValueIsRefusedNamingTheRowAndChangesNothing(string name, float bad, int row, int element, bool range, bool lz4)
    {
        var table = await SeededTableAsync();
        using var reply = await Http.PostAsync($"/v1/tables/{table}/push", Wire.Kv(Block(With(bad, row, element), range), lz4));
        string detail = await Wire.AssertProblemAsync(reply, 400, ProblemCodes.NonFiniteValue);
        Assert.True(detail.Contains($"Row {row} (key {KeyOf(row, range)}), element {element} is {What(bad)}", StringComparison.Ordinal), $"{name}: {detail}");
        await AssertUnchangedAsync(table);
        // A range push covers keys 10…14: 11…14 were never pushed and must still read as the initial zeros.
        Assert.Equal(Wire.Fill(4 * Dim, 0f), await Wire.PullAsync(Http, table, [11, 12, 13, 14]));
    }

    /// <summary>case, JSON body (the table has keys 10…50 and dim 3), row, element, what the detail says.</summary>
    public static TheoryData<string, string, int, int, string> JsonCases() => new()
    {
        { "1e39, first row", """{"keys":[10,20,30,40,50],"values":[[1e39,1,1],[1,1,1],[1,1,1],[1,1,1],[1,1,1]]}""", 0, 0, "+Infinity" },
        { "1e39, middle row", """{"keys":[10,20,30,40,50],"values":[[1,1,1],[1,1,1],[1,1e39,1],[1,1,1],[1,1,1]]}""", 2, 1, "+Infinity" },
        { "1e39, last row", """{"keys":[10,20,30,40,50],"values":[[1,1,1],[1,1,1],[1,1,1],[1,1,1],[1,1,1e39]]}""", 4, 2, "+Infinity" },
        { "-1e400, first row", """{"keys":[10,20,30,40,50],"values":[[1,-1e400,1],[1,1,1],[1,1,1],[1,1,1],[1,1,1]]}""", 0, 1, "-Infinity" },
        { "-1e400, middle row", """{"keys":[10,20,30,40,50],"values":[[1,1,1],[1,1,1],[-1e400,1,1],[1,1,1],[1,1,1]]}""", 2, 0, "-Infinity" },
        { "-1e400, last row", """{"keys":[10,20,30,40,50],"values":[[1,1,1],[1,1,1],[1,1,1],[1,1,1],[1,-1e400,1]]}""", 4, 1, "-Infinity" },
        { "3.5e38, just past float.MaxValue", """{"keys":[10,20,30,40,50],"values":[[1,1,1],[1,1,1],[1,1,1],[1,3.5e38,1],[1,1,1]]}""", 3, 1, "+Infinity" },
        { "dense range, 1e39 in the last row", """{"first":10,"values":[[1,1,1],[1,1,1],[1,1,1],[1,1,1],[1,1,1e39]]}""", 4, 2, "+Infinity" },
    };

    [Theory]
    [MemberData(nameof(JsonCases))]
    public async Task AJsonPushWithANumberBeyondFloat32IsRefusedNamingTheRowAndChangesNothing(string name, string json, int row, int element, string what)
    {
        var table = await SeededTableAsync();
        using var reply = await Http.PostAsync($"/v1/tables/{table}/push", Wire.Json(json));
        string detail = await Wire.AssertProblemAsync(reply, 400, ProblemCodes.NonFiniteValue);
        ulong key = json.Contains("\"first\"", StringComparison.Ordinal) ? 10 + (ulong)row : Keys[row];
        Assert.True(detail.Contains($"Row {row} (key {key}), element {element} is {what}", StringComparison.Ordinal), $"{name}: {detail}");
        Assert.Contains("float32", detail);
        await AssertUnchangedAsync(table);
        Assert.Equal(Wire.Fill(2 * Dim, 0f), await Wire.PullAsync(Http, table, [13, 14]));   // a range push's rows are untouched too
    }

    [Fact]
    public async Task AJsonNumberJustInsideFloat32IsAccepted()
    {
        var table = await SeededTableAsync("""{"dim":3,"updater":{"kind":"assign"}}""");
        using var reply = await Http.PostAsync($"/v1/tables/{table}/push", Wire.Json("""{"keys":[10],"values":[[3.4028234e38,-3.4028234e38,1e-45]]}"""));
        Assert.True(reply.IsSuccessStatusCode, await reply.Content.ReadAsStringAsync());
        Assert.Equal((float[])[float.MaxValue, float.MinValue, float.Epsilon], await Wire.PullAsync(Http, table, [10]));
    }

    [Theory]
    [MemberData(nameof(BinaryCases))]
    public async Task AStreamPushWithANonFiniteValueIsRefusedUnderItsIdAndTheStreamGoesOn(string name, float bad, int row, int element, bool range, bool lz4)
    {
        var table = await SeededTableAsync();
        await using var stream = await StreamClient.OpenAsync(fixture.Server);
        byte[] frame = StreamFrames.Frame(7, StreamOp.Push, table, lz4 ? Wire.Lz4(Block(With(bad, row, element), range)) : Block(With(bad, row, element), range));
        if (lz4) frame[13] = (byte)StreamFrameFlags.Lz4;

        await stream.SendAsync(frame, StreamFrames.Pull(8, table, Keys));

        var error = await stream.ReadOneAsync();
        Assert.Equal(7UL, error.Id);
        string detail = error.AssertProblem(400, ProblemCodes.NonFiniteValue);
        Assert.True(detail.Contains($"Row {row} (key {KeyOf(row, range)}), element {element} is {What(bad)}", StringComparison.Ordinal), $"{name}: {detail}");
        var pulled = await stream.ReadOneAsync();
        Assert.Equal(8UL, pulled.Id);
        Assert.Equal(Seed(), pulled.Values(Keys));
        await AssertUnchangedAsync(table);
    }

    [Fact]
    public async Task AnAllowNonFiniteTableStoresNaNAndInfinityAndPullsThemBack()
    {
        const string schema = """{"dim":3,"updater":{"kind":"assign"},"allowNonFinite":true}""";
        var table = ServerFixture.NewTable("nf-ok");
        await Wire.CreateTableAsync(Http, table, schema);
        float nanBits = BitConverter.Int32BitsToSingle(unchecked((int)0xFFC0_1234));
        await Wire.PushAsync(Http, table, [10, 20], [float.NaN, float.PositiveInfinity, float.NegativeInfinity, nanBits, 1, 2], Dim);
        using (var json = await Http.PostAsync($"/v1/tables/{table}/push", Wire.Json("""{"keys":[30],"values":[[1e39,-1e400,5]]}""")))
            Assert.True(json.IsSuccessStatusCode, await json.Content.ReadAsStringAsync());
        await using (var stream = await StreamClient.OpenAsync(fixture.Server))
        {
            await stream.SendAsync(StreamFrames.Push(1, table, [40], [float.NegativeInfinity, 0, float.NaN], Dim, lz4: true));
            Assert.Equal((1L, 1L), (await stream.ReadOneAsync()).Ack());
        }

        float[] values = await Wire.PullAsync(Http, table, [10, 20, 30, 40]);
        float[] expected = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, nanBits, 1, 2, float.PositiveInfinity, float.NegativeInfinity, 5, float.NegativeInfinity, 0, float.NaN];
        // Bit for bit: the NaN payload survives as well.
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), values.Select(BitConverter.SingleToInt32Bits));

        var info = (await Http.GetFromJsonAsync($"/v1/tables/{table}", ProtocolJson.Default.TableInfo))!;
        Assert.True(info.Schema.AllowNonFinite);
    }

    [Fact]
    public async Task AllowNonFiniteIsPartOfTheSchemaIdentity()
    {
        var table = ServerFixture.NewTable("nf-id");
        await Wire.CreateTableAsync(Http, table, """{"dim":2,"allowNonFinite":true}""");
        using (var same = await Http.PutAsync($"/v1/tables/{table}", Wire.Json("""{"dim":2,"allowNonFinite":true}""")))
            Assert.Equal(200, (int)same.StatusCode);
        using (var other = await Http.PutAsync($"/v1/tables/{table}", Wire.Json("""{"dim":2}""")))
            await Wire.AssertProblemAsync(other, 409, ProblemCodes.TableExists);

        var plain = ServerFixture.NewTable("nf-id");
        await Wire.CreateTableAsync(Http, plain, """{"dim":2}""");
        // false is the default: saying it is the same schema.
        using (var same = await Http.PutAsync($"/v1/tables/{plain}", Wire.Json("""{"dim":2,"allowNonFinite":false}""")))
            Assert.Equal(200, (int)same.StatusCode);
        using (var other = await Http.PutAsync($"/v1/tables/{plain}", Wire.Json("""{"dim":2,"allowNonFinite":true}""")))
            await Wire.AssertProblemAsync(other, 409, ProblemCodes.TableExists);
        using var get = await Http.GetAsync($"/v1/tables/{plain}");
        Assert.DoesNotContain("allowNonFinite", await get.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AnImportWithANonFiniteValueIsRefusedUnlessTheSchemaAllowsIt()
    {
        // Row 2 (key 15) of 4, element 1: -Infinity.
        byte[] file = ImportFiles.Make([4, 8, 15, 16]);
        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(file.AsSpan(file.Length - 12), float.NegativeInfinity);

        var made = ServerFixture.NewTable("nf-imp");
        using (var reply = await Http.PostAsync($"/v1/tables/{made}/import", ImportFiles.Body(file)))
            Assert.Contains("Row 2 (key 15), element 1", await Wire.AssertProblemAsync(reply, 400, ProblemCodes.NonFiniteValue));
        await ImportFiles.AssertNoTableAsync(Http, made);

        var kept = ServerFixture.NewTable("nf-imp");
        await Wire.CreateTableAsync(Http, kept, """{"dim":2}""");
        await Wire.PushAsync(Http, kept, [4, 15], [7, 7, 8, 8], 2);
        using (var reply = await Http.PostAsync($"/v1/tables/{kept}/import", ImportFiles.Body(file)))
            await Wire.AssertProblemAsync(reply, 400, ProblemCodes.NonFiniteValue);
        Assert.Equal((float[])[7, 7, 0, 0, 8, 8, 0, 0], await Wire.PullAsync(Http, kept, [4, 8, 15, 16]));

        byte[] allowed = ImportFiles.Make([4, 8, 15, 16], metadata: """{"paramdb.format":"1","paramdb.schema":"{\"dim\":2,\"allowNonFinite\":true}"}""");
        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(allowed.AsSpan(allowed.Length - 12), float.NegativeInfinity);
        var open = ServerFixture.NewTable("nf-imp");
        var created = await ImportFiles.ImportAsync(Http, open, allowed, 201);
        Assert.True(created.Schema.AllowNonFinite);
        Assert.Equal(1, created.NonFiniteValues);
        Assert.Equal(float.NegativeInfinity, (await Wire.PullAsync(Http, open, [15]))[1]);
    }
}

/// <summary>The flag survives a restart, and a refused push leaves nothing in the write-ahead log to replay.</summary>
public sealed class NonFiniteDurabilityTests
{
    [Fact]
    public async Task TheFlagSurvivesARestartAndARefusedPushIsNotReplayedAfterSigkill()
    {
        var data = RunningServer.NewTempDirectory();
        try
        {
            using (var node = await NodeProcess.StartAsync(data, "--checkpoint-interval", "0"))
            {
                using var http = new HttpClient { BaseAddress = node.Http1 };
                await Wire.CreateTableAsync(http, "open", """{"dim":2,"allowNonFinite":true}""");
                await Wire.CreateTableAsync(http, "strict", """{"dim":2}""");
                await Wire.PushAsync(http, "strict", [1, 2], [1, 2, 3, 4], 2);
                // Had the refused push been logged, the replay would add NaN to row 2.
                using (var refused = await http.PostAsync("/v1/tables/strict/push", Wire.Kv(Wire.PushBlock([1, 2], [1, 1, float.NaN, 1], 2))))
                    await Wire.AssertProblemAsync(refused, 400, ProblemCodes.NonFiniteValue);
                await Wire.PushAsync(http, "strict", [1], [10, 10], 2);
                await node.KillAsync();
            }
            using (var node = await NodeProcess.StartAsync(data, "--checkpoint-interval", "0"))
            {
                using var http = new HttpClient { BaseAddress = node.Http1 };
                Assert.Equal((float[])[11, 12, 3, 4], await Wire.PullAsync(http, "strict", [1, 2]));
                Assert.True((await http.GetFromJsonAsync("/v1/tables/open", ProtocolJson.Default.TableInfo))!.Schema.AllowNonFinite);
                Assert.False((await http.GetFromJsonAsync("/v1/tables/strict", ProtocolJson.Default.TableInfo))!.Schema.AllowNonFinite);
                await Wire.PushAsync(http, "open", [5], [float.NaN, float.PositiveInfinity], 2);
                using var refused = await http.PostAsync("/v1/tables/strict/push", Wire.Kv(Wire.PushBlock([5], [float.NaN, 0], 2)));
                await Wire.AssertProblemAsync(refused, 400, ProblemCodes.NonFiniteValue);
            }
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }
}
