using ParamDb.Testing.History;

namespace ParamDb.Server.Tests.Cluster;

/// <summary>The fault tests' last check: every key's recorded history is linearizable.</summary>
internal static class HistoryAssert
{
    /// <summary>Fails naming the first key whose history one register could not have produced, and why.</summary>
    public static void Linearizable(HistoryRecorder history)
    {
        foreach (ulong key in history.Keys)
        {
            Verdict verdict = Linearizability.Check(history.Of(key));
            Assert.True(verdict.IsLinearizable, $"key {key}: {verdict.Explanation}");
        }
    }
}
