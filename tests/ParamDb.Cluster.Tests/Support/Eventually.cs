using System.Diagnostics;

namespace ParamDb.Cluster.Tests.Support;

/// <summary>Waits for a condition with a deadline, checking every few milliseconds; fails naming what never came true.</summary>
internal static class Eventually
{
    public static async Task<TimeSpan> TrueAsync(Func<bool> condition, TimeSpan deadline, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > deadline) throw new TimeoutException($"Not true within {deadline.TotalSeconds:0.#} s: {what}.");
            await Task.Delay(5);
        }
        return clock.Elapsed;
    }

    public static async Task<T> SomeAsync<T>(Func<T?> probe, TimeSpan deadline, string what) where T : class
    {
        T? found = null;
        await TrueAsync(() => (found = probe()) is not null, deadline, what);
        return found!;
    }
}
