using System.Diagnostics;

namespace ParamDb.Testing;

/// <summary>
/// Hosts in Linux network namespaces that this lab creates, joined by a bridge of its own, so tests can cut the
/// links between them (docs/replication.md, "Testing"). Host k (from 1) is namespace <c>pdb{L}n{k}</c> with
/// address 10.200.L.k on its <c>eth0</c>; the bridge <c>pdb{L}br</c> carries 10.200.L.254, so this process reaches
/// every host. A cut is an nftables DROP inside the cut host's namespace, in both directions: the namespace side,
/// since on this machine connections still succeed when the host side of a veth goes down. Needs root, iproute2
/// and nftables (<c>.ci/run</c> installs them).
/// </summary>
public sealed class NetworkLab : IDisposable
{
    private const string Ip = "/usr/sbin/ip", Nft = "/usr/sbin/nft";
    private readonly int _hosts;
    private bool _disposed;

    private NetworkLab(int lab, int hosts)
    {
        Lab = lab;
        _hosts = hosts;
    }

    /// <summary>The lab's number L: its names and its /24 (10.200.L.0).</summary>
    public int Lab { get; }

    /// <summary>Why namespaces cannot be made here, or null when they can.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "network namespaces need Linux";
        if (Environment.UserName != "root") return "network namespaces need root";
        if (!File.Exists(Ip)) return $"{Ip} is missing (Debian package iproute2)";
        if (!File.Exists(Nft)) return $"{Nft} is missing (Debian package nftables)";
        return null;
    }

    /// <summary>Creates <paramref name="hosts"/> hosts on a fresh bridge, on a lab number no other lab here uses.</summary>
    public static NetworkLab Create(int hosts)
    {
        if (Unavailable() is { } why) throw new InvalidOperationException($"A network lab cannot be made: {why}.");
        ArgumentOutOfRangeException.ThrowIfLessThan(hosts, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(hosts, 250);
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int lab = 1 + (Environment.ProcessId + attempt * 37) % 250;
            // Creating the bridge claims the number: a second lab (another test process) fails here and moves on.
            if (Run(Ip, $"link add pdb{lab}br type bridge", check: false).ExitCode != 0) continue;
            var created = new NetworkLab(lab, hosts);
            try
            {
                created.Build();
                return created;
            }
            catch
            {
                created.Dispose();
                throw;
            }
        }
        throw new InvalidOperationException("No free network lab number: 50 bridges pdb*br exist already.");
    }

    /// <summary>The namespace of host <paramref name="k"/>.</summary>
    public string Namespace(int k) => $"pdb{Lab}n{k}";

    /// <summary>The address of host <paramref name="k"/>.</summary>
    public string Address(int k) => $"10.200.{Lab}.{k}";

    /// <summary>A command that runs <paramref name="info"/> inside host <paramref name="k"/>'s namespace, same environment and redirections.</summary>
    public ProcessStartInfo Inside(int k, ProcessStartInfo info)
    {
        var wrapped = new ProcessStartInfo(Ip)
        {
            RedirectStandardOutput = info.RedirectStandardOutput,
            RedirectStandardError = info.RedirectStandardError,
            UseShellExecute = false,
            WorkingDirectory = info.WorkingDirectory,
        };
        foreach (string a in (string[])["netns", "exec", Namespace(k), info.FileName, .. info.ArgumentList]) wrapped.ArgumentList.Add(a);
        foreach (var (name, value) in info.Environment) wrapped.Environment[name] = value;
        return wrapped;
    }

    /// <summary>Cuts host <paramref name="k"/> off from <paramref name="peers"/>, both ways; this process still reaches it.</summary>
    public void Cut(int k, params int[] peers)
    {
        Heal(k);
        var rules = new System.Text.StringBuilder("table inet pdbcut {\n  chain in { type filter hook input priority 0;\n");
        foreach (int p in peers) rules.Append($"    ip saddr {Address(p)} drop;\n");
        rules.Append("  }\n  chain out { type filter hook output priority 0;\n");
        foreach (int p in peers) rules.Append($"    ip daddr {Address(p)} drop;\n");
        rules.Append("  }\n}\n");
        Run(Ip, $"netns exec {Namespace(k)} {Nft} -f -", input: rules.ToString());
    }

    /// <summary>Lifts every cut of host <paramref name="k"/>.</summary>
    public void Heal(int k) => Run(Ip, $"netns exec {Namespace(k)} {Nft} delete table inet pdbcut", check: false);

    /// <summary>Deletes the hosts and the bridge (their processes must have ended).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int k = 1; k <= _hosts; k++)
        {
            Run(Ip, $"link del pdb{Lab}v{k}", check: false);
            Run(Ip, $"netns del {Namespace(k)}", check: false);
        }
        Run(Ip, $"link del pdb{Lab}br", check: false);
    }

    private void Build()
    {
        Run(Ip, $"addr add 10.200.{Lab}.254/24 dev pdb{Lab}br");
        Run(Ip, $"link set pdb{Lab}br up");
        for (int k = 1; k <= _hosts; k++)
        {
            string ns = Namespace(k);
            Run(Ip, $"netns add {ns}");
            Run(Ip, $"netns exec {ns} {Ip} link set lo up");
            Run(Ip, $"link add pdb{Lab}v{k} type veth peer name eth0 netns {ns}");
            Run(Ip, $"link set pdb{Lab}v{k} master pdb{Lab}br up");
            Run(Ip, $"netns exec {ns} {Ip} addr add {Address(k)}/24 dev eth0");
            Run(Ip, $"netns exec {ns} {Ip} link set eth0 up");
        }
    }

    private static (int ExitCode, string Output) Run(string file, string arguments, bool check = true, string? input = null)
    {
        var info = new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = input is not null,
            UseShellExecute = false,
        };
        using var p = Process.Start(info)!;
        if (input is not null)
        {
            p.StandardInput.Write(input);
            p.StandardInput.Close();
        }
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        if (!p.WaitForExit(30_000))
        {
            p.Kill();
            throw new TimeoutException($"{file} {arguments} did not finish in 30 s.");
        }
        if (check && p.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments} failed ({p.ExitCode}): {output.Trim()}");
        return (p.ExitCode, output);
    }
}
