using System.Globalization;

namespace ParamDb.Bench;

/// <summary>
/// CPU time of the node processes under test, read from <c>/proc/PID/stat</c> (user + system, in clock ticks of
/// 1/100 s): the figure the benchmarks quote beside rates, because on a noisy machine CPU seconds per GB moved
/// are steadier than GB per second (docs/benchmarks.md).
/// </summary>
internal sealed class NodeCpu(IReadOnlyList<int> pids)
{
    /// <summary>Clock ticks per second: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).</summary>
    private const double TicksPerSecond = 100;

    /// <summary>The processes watched.</summary>
    public IReadOnlyList<int> Pids => pids;

    /// <summary>User plus system CPU seconds of every watched process so far.</summary>
    public double Seconds()
    {
        long ticks = 0;
        foreach (int pid in pids)
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the
            // 14th and 15th fields of the line, the 12th and 13th after the closing parenthesis.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        return ticks / TicksPerSecond;
    }
}
