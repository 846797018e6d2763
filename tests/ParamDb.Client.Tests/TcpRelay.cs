using System.Net;
using System.Net.Sockets;

namespace ParamDb.Client.Tests;

/// <summary>
/// A real TCP relay on 127.0.0.1 in front of a server: it forwards bytes both ways and lets a test hold the
/// server's replies and cut every connection, so a client sees the network fail exactly when the test says.
/// </summary>
internal sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly List<Socket> _sockets = [];
    private readonly Task _accepting;
    private TaskCompletionSource _repliesOpen = Open();
    private int _accepted;

    public TcpRelay(Uri target)
    {
        _target = new IPEndPoint(IPAddress.Parse(target.Host), target.Port);
        _listener.Start();
        Uri = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _accepting = AcceptAsync();
    }

    /// <summary>The relay's address: an h2c address when the target is one.</summary>
    public Uri Uri { get; }

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>From now on, bytes from the server are held (not forwarded) until <see cref="ReleaseReplies"/>.</summary>
    public void HoldReplies() => Interlocked.Exchange(ref _repliesOpen, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Forwards the server's bytes again.</summary>
    public void ReleaseReplies() => Volatile.Read(ref _repliesOpen).TrySetResult();

    /// <summary>Resets every connection (RST): held bytes are lost, both sides see the connection fail.</summary>
    public void SeverAll()
    {
        lock (_sockets)
        {
            foreach (Socket socket in _sockets)
            {
                try
                {
                    socket.LingerState = new LingerOption(true, 0);
                    socket.Close();
                }
                catch (ObjectDisposedException)
                {
                }
            }
            _sockets.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        SeverAll();
        ReleaseReplies();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            Interlocked.Increment(ref _accepted);
            var server = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            try
            {
                await server.ConnectAsync(_target);
            }
            catch (SocketException)
            {
                client.Close();
                server.Dispose();
                continue;
            }
            lock (_sockets)
            {
                _sockets.Add(client);
                _sockets.Add(server);
            }
            _ = PumpAsync(client, server, held: false);
            _ = PumpAsync(server, client, held: true);
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool held)
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int read = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0) break;
                if (held) await Volatile.Read(ref _repliesOpen).Task;
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Severed, or the other side went away: the other pump sees it too.
        }
    }
}
