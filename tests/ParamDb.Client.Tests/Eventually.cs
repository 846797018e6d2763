using System.Diagnostics;

namespace ParamDb.Client.Tests;

/// <summary>Waiting on a condition with a deadline: the tests' only way to wait for something to happen.</summary>
internal static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test with <paramref name="what"/> past the deadline.</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan? deadline = null)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan limit = deadline ?? TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            if (clock.Elapsed > limit) Assert.Fail($"Not within {limit.TotalSeconds:0.#} s: {what}");
            await Task.Delay(10); // poll interval, not a synchronisation: the condition decides
        }
    }
}
