namespace ParamDb.Server.Cli;

/// <summary>
/// A command's arguments after its words: positional ones in order, and <c>--name value</c> (or
/// <c>--name=value</c>) options. <c>--url</c> names the node; it defaults to the default <c>--listen</c> address.
/// </summary>
public sealed class CliArguments
{
    /// <summary>The node a command talks to when <c>--url</c> is not given: the default <c>--listen</c>.</summary>
    public const string DefaultUrl = "http://127.0.0.1:7420";

    private readonly Dictionary<string, string> _options;

    private CliArguments(List<string> positional, Dictionary<string, string> options, bool help)
    {
        Positional = positional;
        _options = options;
        Help = help;
    }

    /// <summary>Arguments that are not options, in order.</summary>
    public IReadOnlyList<string> Positional { get; }

    /// <summary>Whether <c>--help</c> or <c>-h</c> was given.</summary>
    public bool Help { get; }

    /// <summary>The node's base address, from <c>--url</c> or <see cref="DefaultUrl"/>.</summary>
    /// <exception cref="UsageException">The value is not an http or https URL.</exception>
    public Uri Url
    {
        get
        {
            string text = Option("--url") ?? DefaultUrl;
            if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                throw new UsageException($"--url: '{text}' is not an http:// or https:// address (e.g. {DefaultUrl}).");
            return url;
        }
    }

    /// <summary>The value of an option, or null when it was not given.</summary>
    public string? Option(string name) => _options.GetValueOrDefault(name);

    /// <summary>Whether the flag <paramref name="name"/> (an option without a value) was given.</summary>
    public bool Flag(string name) => _options.ContainsKey(name);

    /// <summary>The value of an option that must be given.</summary>
    /// <exception cref="UsageException">It was not.</exception>
    public string Required(string name, string what) => Option(name) ?? throw new UsageException($"{name} is required: {what}.");

    /// <summary>The single positional argument.</summary>
    /// <exception cref="UsageException">None, or more than one, was given.</exception>
    public string Single(string what) => Positional.Count switch
    {
        1 => Positional[0],
        0 => throw new UsageException($"{what} is required."),
        _ => throw new UsageException($"Only one {what} is taken; got {Positional.Count}: {string.Join(' ', Positional)}."),
    };

    /// <summary>Parses <paramref name="args"/>, knowing which options take a value.</summary>
    /// <exception cref="UsageException">An unknown option, one given twice, or one without its value.</exception>
    /// <param name="args">The arguments after the command's words.</param>
    /// <param name="valueOptions">Options that take a value.</param>
    /// <param name="flags">Options that take none (<c>--accept-loss</c>); <see cref="Flag"/> tells whether one was given.</param>
    public static CliArguments Parse(ReadOnlySpan<string> args, IReadOnlyList<string> valueOptions, IReadOnlyList<string>? flags = null)
    {
        var positional = new List<string>();
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        bool help = false;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (arg is "--help" or "-h")
            {
                help = true;
                continue;
            }
            if (arg == "--")
            {
                foreach (string rest in args[(i + 1)..]) positional.Add(rest);
                break;
            }
            if (!arg.StartsWith('-') || arg == "-")
            {
                positional.Add(arg);
                continue;
            }
            if (flags is not null && flags.Contains(arg))
            {
                if (!options.TryAdd(arg, "")) throw new UsageException($"{arg} is given twice.");
                continue;
            }
            int equals = arg.IndexOf('=');
            string name = equals > 0 ? arg[..equals] : arg;
            if (name != "--url" && !valueOptions.Contains(name))
            {
                string? closest = Options.ClosestName.Find(name, [.. valueOptions, "--url", "--help"]);
                throw new UsageException(closest is null ? $"Unknown option {name}." : $"Unknown option {name}; did you mean {closest}?");
            }
            string value;
            if (equals > 0) value = arg[(equals + 1)..];
            else if (i + 1 < args.Length) value = args[++i];
            else throw new UsageException($"{name} needs a value.");
            if (!options.TryAdd(name, value)) throw new UsageException($"{name} is given twice.");
        }
        return new CliArguments(positional, options, help);
    }
}

/// <summary>The command line cannot be used as given: exit code 2, with the message and the command's usage.</summary>
public sealed class UsageException(string message) : Exception(message);
