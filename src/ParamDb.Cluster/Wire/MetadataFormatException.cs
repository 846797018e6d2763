namespace ParamDb.Cluster.Wire;

/// <summary>
/// Bytes that are not a command or a metadata snapshot this version can read: an unknown command id or format
/// version, a truncated input, trailing bytes, or a string that is not UTF-8. The message names what was being
/// read and where.
/// </summary>
public sealed class MetadataFormatException : FormatException
{
    /// <summary>An exception with the given message.</summary>
    public MetadataFormatException(string message) : base(message) { }

    /// <summary>An exception with the given message and cause.</summary>
    public MetadataFormatException(string message, Exception innerException) : base(message, innerException) { }
}
