using ParamDb.Testing;
using Xunit.Abstractions;

namespace ParamDb.Server.Tests;

/// <summary>
/// SIGKILL at random moments under a clocked push load (see <see cref="CrashHarness"/>). Long soaks:
/// <c>dotnet run --project tests/ParamDb.CrashHarness -- --rounds 500</c>.
/// </summary>
public sealed class CrashTests(ITestOutputHelper output)
{
    [Fact]
    public async Task NoAcknowledgedPushIsLostAndRetriedOnesLandOnceAcrossTwentyKills()
    {
        CrashReport report = await CrashHarness.RunAsync(new CrashOptions { Rounds = 20 }, output.WriteLine);
        output.WriteLine(report.ToString());
        Assert.Equal(20, report.Rounds);
        // The kills must land under load, or the run proved nothing.
        Assert.True(report.Acknowledged > 20 * 4, $"only {report.Acknowledged} pushes were acknowledged in 20 rounds");
        Assert.True(report.InFlight > 0, "no kill cut off a push in flight");
    }
}
