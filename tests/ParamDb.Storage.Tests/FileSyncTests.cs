using ParamDb.Storage.Durability;

namespace ParamDb.Storage.Tests;

/// <summary>
/// The fsync helpers on real directories. What a power loss keeps cannot be observed from a test; what can: the
/// calls reach the OS (a directory that cannot be opened is an error naming it, not a silent no-op) and a tree is
/// walked whole.
/// </summary>
public sealed class FileSyncTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "paramdb-filesync-tests", Guid.NewGuid().ToString("N"));

    public FileSyncTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void ADirectoryThatCannotBeOpenedIsAnErrorNamingIt()
    {
        string missing = Path.Combine(_directory, "not-there");
        var e = Assert.Throws<IOException>(() => FileSync.Directory(missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void ATreeIsWalkedWhole()
    {
        string nested = Path.Combine(_directory, "a", "b");
        Directory.CreateDirectory(nested);
        File.WriteAllBytes(Path.Combine(nested, "f.dat"), [1, 2, 3]);
        FileSync.Tree(_directory);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(nested, "f.dat")));

        // An entry two levels down that cannot be opened fails the sync, naming it: it is visited, not skipped.
        string dangling = Path.Combine(nested, "gone.dat");
        File.CreateSymbolicLink(dangling, Path.Combine(_directory, "nowhere"));
        var e = Assert.ThrowsAny<IOException>(() => FileSync.Tree(_directory));
        Assert.Contains("gone.dat", e.Message);
    }

    [Fact]
    public void ATreeThatDoesNotExistIsNothingToSync()
    {
        FileSync.Tree(Path.Combine(_directory, "absent"));
        Assert.False(Directory.Exists(Path.Combine(_directory, "absent")));
    }
}
