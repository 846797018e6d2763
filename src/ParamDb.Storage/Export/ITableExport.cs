using ParamDb.Protocol.Safetensors;

namespace ParamDb.Storage.Export;

/// <summary>
/// A prepared table export as a safetensors file (docs/export.md): its length is known before a byte is written, so
/// a reply can carry an exact Content-Length. One node's export is a <see cref="TableExport"/>; a cluster merges its
/// nodes' exports into one.
/// </summary>
public interface ITableExport : IDisposable
{
    /// <summary>The file's prefix: n, dim, the schema and every offset.</summary>
    SafetensorsHeader Header { get; }

    /// <summary>Bytes of the whole file.</summary>
    long Length { get; }

    /// <summary>Writes the whole file, exactly <see cref="Length"/> bytes, in constant memory. Call it once.</summary>
    Task WriteToAsync(Stream destination, CancellationToken cancellationToken = default);
}
