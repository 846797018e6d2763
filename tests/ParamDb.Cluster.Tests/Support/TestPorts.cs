using System.Net;
using System.Net.Sockets;

namespace ParamDb.Cluster.Tests.Support;

/// <summary>
/// One TCP port per test in 17000–17999, free on 127.0.0.1, .2 and .3 (members of a group bind the same port on
/// different loopback addresses). Each test process starts at an offset of its own, so concurrent runs rarely meet.
/// </summary>
internal static class TestPorts
{
    private const int First = 17_000, Count = 1_000;
    private static int _next = Environment.ProcessId % 125 * 8;

    public static int Next(int members = 3)
    {
        for (int attempt = 0; attempt < Count; attempt++)
        {
            int port = First + Interlocked.Increment(ref _next) % Count;
            if (Enumerable.Range(1, members).All(octet => IsFree(IPAddress.Parse($"127.0.0.{octet}"), port))) return port;
        }
        throw new InvalidOperationException($"No port in {First}–{First + Count - 1} is free on 127.0.0.1–{members}.");
    }

    private static bool IsFree(IPAddress address, int port)
    {
        try
        {
            var listener = new TcpListener(address, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
