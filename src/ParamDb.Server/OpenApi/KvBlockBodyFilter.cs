using System.Net.Mime;
using Microsoft.OpenApi;
using ParamDb.Protocol;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace ParamDb.Server.OpenApi;

/// <summary>
/// Describes KV block, stream and export bodies as what they are, binary (<c>type: string, format: binary</c>), instead
/// of the JSON schema of <see cref="KvJson"/> that <c>Accepts/Produces</c> attach to every media type (or the
/// base64 string Swashbuckle makes of <c>byte[]</c>).
/// </summary>
public sealed class KvBlockBodyFilter : IOperationFilter
{
    /// <inheritdoc />
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (operation.RequestBody?.Content is { } request) MakeBinary(request);
        if (operation.Responses is null) return;
        foreach (var response in operation.Responses.Values)
            if (response.Content is { } content) MakeBinary(content);
    }

    private static void MakeBinary(IDictionary<string, IOpenApiMediaType> content)
    {
        if (content.TryGetValue(MediaTypes.KvBlock, out var media) && media is OpenApiMediaType concrete)
            concrete.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "A KV block (docs/wire-format.md): 24-byte header \"PDB1\", keys, float32 values." };
        if (content.TryGetValue(MediaTypes.Stream, out media) && media is OpenApiMediaType stream)
            stream.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "A sequence of stream frames, each a u32 length then the frame (docs/streaming.md)." };
        if (content.TryGetValue(MediaTypeNames.Application.Octet, out media) && media is OpenApiMediaType file)
            file.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "A safetensors file (docs/export.md): u64 header length, JSON header, keys U64 [n], values F32 [n, dim]." };
    }
}
