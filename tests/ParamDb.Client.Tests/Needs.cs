namespace ParamDb.Client.Tests;

/// <summary>Why a test is skipped on this branch: the server half it needs has not been merged yet.</summary>
internal static class Needs
{
    /// <summary>The workers endpoints and real vector clocks (main, replacing the ParamStore.Versions stub).</summary>
    public const string Clocks = "needs the workers endpoints and real vector clocks on main (ParamStore.Versions is a stub here)";
}
