using System.Buffers.Binary;
using System.Text;

namespace ParamDb.Protocol.Tests.Safetensors;

/// <summary>Builds safetensors files from a header JSON written out in the test, as another writer would.</summary>
internal static class SafetensorsFiles
{
    /// <summary>
    /// 8-byte length, <paramref name="json"/> padded with spaces to a multiple of 8 (unless
    /// <paramref name="pad"/> is false), then <paramref name="data"/> bytes of a counting pattern.
    /// </summary>
    public static byte[] Build(string json, int data, bool pad = true)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        int n = pad ? (header.Length + 7) / 8 * 8 : header.Length;
        var file = new byte[8 + n + data];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)n);
        header.CopyTo(file, 8);
        file.AsSpan(8 + header.Length, n - header.Length).Fill((byte)' ');
        for (int i = 0; i < data; i++) file[8 + n + i] = (byte)i;
        return file;
    }

    /// <summary>A header object from its entries, in the order given.</summary>
    public static string Header(params string[] entries) => "{" + string.Join(",", entries) + "}";

    /// <summary>
    /// JSON written with single quotes, so a case reads without escapes: every ' becomes ", and \' (a quote
    /// inside a string, as in the nested schema JSON) becomes \".
    /// </summary>
    public static string J(string singleQuoted) => singleQuoted.Replace('\'', '"');

    // The valid pieces of a 3-row, dim-2 export of table "t"; cases replace one at a time.
    public static readonly string Meta = J(@"'__metadata__':{'paramdb.format':'1','paramdb.schema':'{\'dim\':2}','paramdb.table':'t'}");
    public static readonly string Keys = J("'keys':{'dtype':'U64','shape':[3],'data_offsets':[0,24]}");
    public static readonly string Values = J("'values':{'dtype':'F32','shape':[3,2],'data_offsets':[24,48]}");
    public const int Data = 48;

    /// <summary>A metadata entry whose entries are <paramref name="inner"/> (single-quoted, see <see cref="J"/>).</summary>
    public static string MetaWith(string inner) => J("'__metadata__':{" + inner + "}");

    /// <summary>The valid metadata with <paramref name="schema"/> (single-quoted, see <see cref="J"/>) as the schema string.</summary>
    public static string MetaSchema(string schema) => MetaWith("'paramdb.format':'1','paramdb.schema':'" + schema + "','paramdb.table':'t'");

    public static byte[] Hex(string spaced) => Convert.FromHexString(spaced.Replace(" ", ""));
}
