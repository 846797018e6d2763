using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using ParamDb.Protocol;

namespace ParamDb.Server.Tests;

/// <summary>Safetensors files for imports, well-formed or broken on purpose, and the import request.</summary>
internal static class ImportFiles
{
    /// <summary>Metadata of a file with schema <c>{"dim":2}</c>, as a JSON object.</summary>
    public const string Dim2Metadata = """{"paramdb.format":"1","paramdb.schema":"{\"dim\":2}"}""";

    /// <summary>
    /// A file with the given keys and values (row i = [i+1, −(i+1), …]); every part of the header can be
    /// replaced to break it in one place.
    /// </summary>
    public static byte[] Make(ulong[] keys, int dim = 2, string metadata = Dim2Metadata, string keysDtype = "U64", string? valuesShape = null)
    {
        var values = new float[keys.Length * dim];
        for (int i = 0; i < values.Length; i++) values[i] = (i / dim + 1) * (i % 2 == 0 ? 1 : -1);
        long keyBytes = 8L * keys.Length, valueBytes = 4L * values.Length;
        string shape = valuesShape ?? $"[{keys.Length},{dim}]";
        string header = $$$"""{"__metadata__":{{{metadata}}},"keys":{"dtype":"{{{keysDtype}}}","shape":[{{{keys.Length}}}],"data_offsets":[0,{{{keyBytes}}}]},"values":{"dtype":"F32","shape":{{{shape}}},"data_offsets":[{{{keyBytes}}},{{{keyBytes + valueBytes}}}]}}""";
        return Assemble(header, MemoryMarshal.AsBytes(keys.AsSpan()), MemoryMarshal.AsBytes(values.AsSpan()));
    }

    /// <summary>8-byte length, the header padded with spaces to a multiple of 8, then the data.</summary>
    public static byte[] Assemble(string header, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        int padded = (json.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + keys.Length + values.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        json.CopyTo(file, 8);
        file.AsSpan(8 + json.Length, padded - json.Length).Fill((byte)' ');
        keys.CopyTo(file.AsSpan(8 + padded));
        values.CopyTo(file.AsSpan(8 + padded + keys.Length));
        return file;
    }

    /// <summary>The values <see cref="Make"/> writes for <paramref name="rows"/> rows.</summary>
    public static float[] ValuesOf(int rows, int dim = 2)
    {
        var values = new float[rows * dim];
        for (int i = 0; i < values.Length; i++) values[i] = (i / dim + 1) * (i % 2 == 0 ? 1 : -1);
        return values;
    }

    /// <summary>The body of an import: the file as <c>application/octet-stream</c>.</summary>
    public static ByteArrayContent Body(byte[] file)
    {
        var content = new ByteArrayContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    /// <summary>Imports <paramref name="file"/> into <paramref name="table"/>, expecting <paramref name="status"/> (201 or 200).</summary>
    public static async Task<ImportReply> ImportAsync(HttpClient http, string table, byte[] file, int status)
    {
        using var reply = await http.PostAsync($"/v1/tables/{table}/import", Body(file));
        Assert.True((int)reply.StatusCode == status, $"import: expected {status}, got {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
        if (status == 201) Assert.Equal($"/v1/tables/{table}", reply.Headers.Location?.OriginalString);
        return (await reply.Content.ReadFromJsonAsync(ProtocolJson.Default.ImportReply))!;
    }

    /// <summary>Asserts that no table is named <paramref name="table"/>: a refused import created none.</summary>
    public static async Task AssertNoTableAsync(HttpClient http, string table)
    {
        using var info = await http.GetAsync($"/v1/tables/{table}");
        Assert.Equal(404, (int)info.StatusCode);
    }
}
