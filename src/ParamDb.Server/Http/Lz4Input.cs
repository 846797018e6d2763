namespace ParamDb.Server.Http;

/// <summary>What K4os LZ4 throws for input that is not a valid LZ4 frame, shared by REST bodies and stream frames.</summary>
internal static class Lz4Input
{
    /// <summary>
    /// True for the exceptions that mean "bad client data": a wrong magic number or header (InvalidDataException,
    /// ArgumentException), a damaged block (InvalidOperationException: most corruptions in a fuzz of 3,000
    /// frames), and a frame that ends early (EndOfStreamException). Anything else is a server fault.
    /// </summary>
    public static bool IsCorrupt(Exception e) =>
        e is InvalidDataException or InvalidOperationException or EndOfStreamException or ArgumentException;
}
