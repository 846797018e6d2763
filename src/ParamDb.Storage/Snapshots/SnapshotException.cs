namespace ParamDb.Storage.Snapshots;

/// <summary>Why a snapshot call was refused; each maps to one problem reply.</summary>
public enum SnapshotError
{
    /// <summary>The name is outside <c>[A-Za-z0-9_.-]{1,128}</c> or starts with a dot.</summary>
    InvalidName,
    /// <summary>A snapshot of that name exists (or is being created).</summary>
    Exists,
    /// <summary>No snapshot has that name.</summary>
    NotFound,
}

/// <summary>A snapshot call refused for a reason the caller can act on; nothing changed.</summary>
public sealed class SnapshotException(SnapshotError error, string message) : Exception(message)
{
    /// <summary>Why it was refused.</summary>
    public SnapshotError Error { get; } = error;

    /// <summary>The refusal for a name no snapshot has.</summary>
    public static SnapshotException NotFound(string name) => new(SnapshotError.NotFound, $"No snapshot is named '{name}'. GET /v1/snapshots lists them.");
}
