using ParamDb.Protocol;

namespace ParamDb.Protocol.Tests;

/// <summary>Table names are <c>[A-Za-z0-9_.-]{1,128}</c> and never a path component.</summary>
public sealed class TableNamesTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("embeddings", true)]
    [InlineData("my-table_1.v2", true)]
    [InlineData("ABC.xyz-09_", true)]
    [InlineData("...", true)]
    [InlineData(".hidden", true)]
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("../etc", false)]
    [InlineData("a/b", false)]
    [InlineData("a\\b", false)]
    [InlineData("a b", false)]
    [InlineData("tab\t", false)]
    [InlineData("naïve", false)]
    [InlineData("emoji😀", false)]
    [InlineData("a%2Fb", false)]
    [InlineData("a:b", false)]
    [InlineData("a\0b", false)]
    public void NameIsValidOnlyForTheAllowedCharacters(string name, bool valid)
    {
        Assert.Equal(valid, TableNames.IsValid(name));
    }

    [Fact]
    public void NamesUpTo128CharactersAreValid()
    {
        Assert.True(TableNames.IsValid(new string('x', TableNames.MaxLength)));
        Assert.False(TableNames.IsValid(new string('x', TableNames.MaxLength + 1)));
    }
}
