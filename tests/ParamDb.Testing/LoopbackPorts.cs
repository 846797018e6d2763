using System.Net;
using System.Net.Sockets;

namespace ParamDb.Testing;

/// <summary>
/// Fixed ports for cluster tests: a cluster node must know its ports before it listens (peers are told them), so
/// port 0 will not do. Picks three consecutive ports free on 127.0.0.1 … 127.0.0.n, starting from a place that
/// differs per process, so parallel test runs rarely meet.
/// </summary>
public static class LoopbackPorts
{
    private static int _next = Environment.ProcessId % 997 * 3;

    /// <summary>A base port P such that P, P+1 and P+2 are free on 127.0.0.1 … 127.0.0.<paramref name="nodes"/>.</summary>
    public static int Triple(int nodes)
    {
        for (int attempt = 0; attempt < 1000; attempt++)
        {
            int port = 21_000 + Interlocked.Add(ref _next, 3) % 30_000;
            bool free = true;
            for (int i = 1; i <= nodes && free; i++)
                for (int p = port; p < port + 3 && free; p++) free = IsFree(IPAddress.Parse($"127.0.0.{i}"), p);
            if (free) return port;
        }
        throw new InvalidOperationException($"No three consecutive ports are free on 127.0.0.1 … 127.0.0.{nodes}.");
    }

    /// <summary>Whether a TCP listener can bind <paramref name="address"/>:<paramref name="port"/> now.</summary>
    public static bool IsFree(IPAddress address, int port)
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
