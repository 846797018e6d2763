using System.Buffers;
using System.Globalization;

namespace ParamDb.Server.Cli;

/// <summary>
/// Progress of a long transfer (an upload or a download), drawn to a command's stderr. On a terminal it redraws
/// one line in place, at most 10 times a second: <c>Uploading emb.safetensors [######------] 52% 1.30 GiB / 2.50 GiB, 210 MiB/s</c>.
/// Otherwise (a log file, CI) it prints a plain line now and then: at each tenth of a known total, at most one a
/// second, and every 10 s whatever the total. A transfer of unknown length (a download without Content-Length)
/// shows the bytes so far and the rate. Not thread-safe: one transfer, one thread at a time.
/// </summary>
public sealed class ProgressBar
{
    /// <summary>Characters of the bar itself.</summary>
    private const int Width = 30;

    /// <summary>The fastest redraw on a terminal: 10 a second keeps up with the eye and costs nothing.</summary>
    private static readonly TimeSpan RedrawEvery = TimeSpan.FromMilliseconds(100);

    /// <summary>Plain lines: at most one a second at tenths of the total, and one every 10 s regardless.</summary>
    private static readonly TimeSpan LineAtTenthAfter = TimeSpan.FromSeconds(1), LineEvery = TimeSpan.FromSeconds(10);

    /// <summary>Bytes copied per read and write in <see cref="CopyAsync"/>: 1 MiB, far above per-call costs.</summary>
    private const int CopyBufferBytes = 1 << 20;

    private readonly TextWriter _output;
    private readonly string _label;
    private readonly long? _total;
    private readonly bool _interactive;
    private readonly TimeProvider _time;
    private readonly long _started;
    private long _lastDraw;
    private long _lastTenth;
    private int _drawnLength;
    private bool _completed;

    /// <summary>Starts a bar; nothing is drawn until the first bytes.</summary>
    /// <param name="output">Where to draw: the command's stderr.</param>
    /// <param name="label">What is moving, e.g. <c>Uploading emb.safetensors</c>.</param>
    /// <param name="total">Bytes the transfer will move; null when unknown.</param>
    /// <param name="interactive">Whether <paramref name="output"/> is a terminal, where the line is redrawn in place.</param>
    /// <param name="time">The clock; the system's by default.</param>
    public ProgressBar(TextWriter output, string label, long? total, bool interactive, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _label = label;
        _total = total;
        _interactive = interactive;
        _time = time ?? TimeProvider.System;
        _started = _lastDraw = _time.GetTimestamp();
    }

    /// <summary>Bytes moved so far.</summary>
    public long Done { get; private set; }

    /// <summary>Counts <paramref name="bytes"/> more and redraws (or prints a line) when it is time to.</summary>
    public void Advance(long bytes)
    {
        Done += bytes;
        long now = _time.GetTimestamp();
        TimeSpan since = _time.GetElapsedTime(_lastDraw, now);
        if (_interactive)
        {
            if (since >= RedrawEvery) Draw(now);
            return;
        }
        long tenth = _total is > 0 and var t ? Done * 10 / t : 0;
        if ((tenth > _lastTenth && since >= LineAtTenthAfter) || since >= LineEvery)
        {
            _lastTenth = tenth;
            Draw(now);
        }
    }

    /// <summary>
    /// Draws the final state and ends the line, then writes <paramref name="note"/> on a line of its own when given
    /// (e.g. what happens next). Only the first call draws.
    /// </summary>
    public void Complete(string? note = null)
    {
        if (_completed) return;
        _completed = true;
        Draw(_time.GetTimestamp());
        if (_interactive) _output.WriteLine();
        if (note is not null) _output.WriteLine(note);
        _output.Flush();
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> in 1 MiB pieces, advancing the bar; an upload and a download alike.</summary>
    public async Task CopyAsync(Stream source, Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, CopyBufferBytes), cancellationToken).ConfigureAwait(false)) > 0)
            {
                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                Advance(read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A byte count for people: <c>512 B</c>, <c>1.50 KiB</c>, <c>12.3 MiB</c>, <c>264 MiB</c>, <c>1.21 GiB</c>.</summary>
    public static string FormatBytes(double bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int unit = 0;
        while (bytes >= 1024 && unit < units.Length - 1)
        {
            bytes /= 1024;
            unit++;
        }
        string format = unit == 0 ? "0" : bytes < 10 ? "0.00" : bytes < 100 ? "0.0" : "0";
        return bytes.ToString(format, CultureInfo.InvariantCulture) + " " + units[unit];
    }

    private void Draw(long now)
    {
        _lastDraw = now;
        double seconds = Math.Max(_time.GetElapsedTime(_started, now).TotalSeconds, 1e-3);
        string rate = FormatBytes(Done / seconds) + "/s";
        string line;
        if (_total is { } t)
        {
            // An empty transfer is complete as soon as it starts.
            long percent = t > 0 ? Math.Min(100, Done * 100 / t) : 100;
            int filled = (int)(percent * Width / 100);
            line = $"{_label} [{new string('#', filled)}{new string('-', Width - filled)}] {percent,3}% {FormatBytes(Done)} / {FormatBytes(t)}, {rate}";
        }
        else
        {
            line = $"{_label} {FormatBytes(Done)}, {rate}";
        }
        if (_interactive)
        {
            // Back to the start of the line, and blank out what a longer previous line left behind.
            _output.Write('\r' + line.PadRight(_drawnLength));
            _drawnLength = line.Length;
        }
        else
        {
            _output.WriteLine(line);
        }
        _output.Flush();
    }
}
