using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace ParamDb.Cluster.Tests.Support;

/// <summary>
/// Sends log lines to the test's output, prefixed with the member and milliseconds since the test began:
/// ParamDb's at Information and up, DotNext's at Warning and up.
/// </summary>
internal sealed class TestLoggerFactory(ITestOutputHelper output, string member, Stopwatch clock) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) =>
        new Logger(this, categoryName.StartsWith("DotNext", StringComparison.Ordinal) ? LogLevel.Warning : LogLevel.Information,
            categoryName[(categoryName.LastIndexOf('.') + 1)..]);

    public void AddProvider(ILoggerProvider provider) { }

    public void Dispose() { }

    private void Write(string line)
    {
        try
        {
            output.WriteLine($"{clock.ElapsedMilliseconds,6} ms [{member}] {line}");
        }
        catch (InvalidOperationException)
        {
            // The test has finished; a member still closing has nobody to tell.
        }
    }

    private sealed class Logger(TestLoggerFactory owner, LogLevel minimum, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string text = $"{logLevel.ToString()[..4]} {category}: {formatter(state, exception)}";
            if (exception is not null) text += $" ({exception.GetType().Name}: {exception.Message})";
            owner.Write(text);
        }
    }
}
