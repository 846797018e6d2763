using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ParamDb.Protocol;

namespace ParamDb.Server.Tests;

/// <summary>Request builders and reply readers shared by the server tests.</summary>
internal static class Wire
{
    public static async Task CreateTableAsync(HttpClient http, string name, string schemaJson)
    {
        using var reply = await http.PutAsync($"/v1/tables/{name}", Json(schemaJson));
        Assert.True(reply.IsSuccessStatusCode, $"create {name}: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, MediaTypes.Json);

    public static ByteArrayContent Kv(byte[] block, bool lz4 = false)
    {
        var content = new ByteArrayContent(lz4 ? Lz4(block) : block);
        content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.KvBlock);
        if (lz4) content.Headers.ContentEncoding.Add(MediaTypes.Lz4Encoding);
        return content;
    }

    public static byte[] PushBlock(ulong[] keys, float[] values, int dim)
    {
        var buffer = new byte[KvBlockWriter.SizeOf(false, keys.Length, dim, true)];
        KvBlockWriter.Write(buffer, keys, values, dim, withValues: true);
        return buffer;
    }

    public static byte[] PullBlock(ulong[] keys, int dim = 0)
    {
        var buffer = new byte[KvBlockWriter.SizeOf(false, keys.Length, dim, false)];
        KvBlockWriter.Write(buffer, keys, default, dim, withValues: false);
        return buffer;
    }

    public static byte[] Lz4(byte[] data)
    {
        using var output = new MemoryStream();
        using (var encoder = LZ4Stream.Encode(output, LZ4Level.L00_FAST, leaveOpen: true)) encoder.Write(data);
        return output.ToArray();
    }

    public static byte[] Unlz4(byte[] data)
    {
        using var decoder = LZ4Stream.Decode(new MemoryStream(data));
        using var output = new MemoryStream();
        decoder.CopyTo(output);
        return output.ToArray();
    }

    public static async Task<PushResult> PushAsync(HttpClient http, string table, ulong[] keys, float[] values, int dim)
    {
        using var reply = await http.PostAsync($"/v1/tables/{table}/push", Kv(PushBlock(keys, values, dim)));
        Assert.True(reply.IsSuccessStatusCode, $"push: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
        return (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.PushResult))!;
    }

    /// <summary>Pulls <paramref name="keys"/> as a KV block and returns the values.</summary>
    public static async Task<float[]> PullAsync(HttpClient http, string table, ulong[] keys)
    {
        using var reply = await http.PostAsync($"/v1/tables/{table}/pull", Kv(PullBlock(keys)));
        var bytes = await reply.Content.ReadAsByteArrayAsync();
        Assert.True(reply.IsSuccessStatusCode, $"pull: {(int)reply.StatusCode} {Encoding.UTF8.GetString(bytes)}");
        Assert.Equal(MediaTypes.KvBlock, reply.Content.Headers.ContentType?.MediaType);
        return ValuesOf(bytes, keys);
    }

    public static float[] ValuesOf(byte[] block, ulong[]? expectedKeys = null)
    {
        Assert.True(KvBlock.TryParse(block, KvExpect.Values, int.MaxValue, out var parsed, out var error), error.Detail);
        if (expectedKeys is not null && !parsed.IsRange) Assert.Equal(expectedKeys, parsed.Keys(block).ToArray());
        return parsed.Values(block).ToArray();
    }

    /// <summary>Asserts a problem reply with <paramref name="status"/> and <paramref name="code"/>; returns the detail.</summary>
    public static async Task<string> AssertProblemAsync(HttpResponseMessage reply, int status, string code)
    {
        var text = await reply.Content.ReadAsStringAsync();
        Assert.True((int)reply.StatusCode == status, $"expected {status} {code}, got {(int)reply.StatusCode}: {text}");
        Assert.Equal(MediaTypes.Problem, reply.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(code, doc.RootElement.GetProperty("code").GetString());
        var detail = doc.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? "" : "";
        return detail;
    }

    public static float[] Fill(int count, float value) => Enumerable.Repeat(value, count).ToArray();

    public static ReadOnlySpan<byte> AsBytes(float[] values) => MemoryMarshal.AsBytes(values.AsSpan());
}
