#!/usr/bin/env python3
"""ParamDb beside dmlc/ps-lite, the C++ parameter server of the paper ParamDb follows (docs/benchmarks.md).

Both run the same workloads on this machine, interleaved round by round (ps-lite, ParamDb, then ParamDb,
ps-lite, …), one request in flight, and the script prints each round's rates, their ratio (ParamDb ÷ ps-lite)
and the CPU seconds per GB pushed of each process: ps-lite's server and worker, ParamDb's node and load
generator (paramdb-bench). The medians over the rounds close the output.

  W-dense push     4,096 keys × 256 f32 (4 MiB), explicit keys
  W-dense pull     the same keys pulled
  W-sparse push    10,000 random keys × 64 f32
  W-sparse pull    the same keys pulled
  W-small pull     1 key × 64 f32: the p99 latency

ps-lite's side is bench/pslite/driver.cc (our code), built against a copy of ps-lite that stays outside this
repository: its source is never committed here. Put a copy of https://github.com/dmlc/ps-lite (measured at
commit 15b8adf1) anywhere outside the repository and name it in PSLITE; the script builds ps-lite there
(`make ps`, once) and the driver beside it. It needs: apt-get install -y libzmq3-dev libprotobuf-dev
protobuf-compiler g++ make.

How ps-lite's figures are taken: each workload is its own run of a scheduler, a server and a worker on
127.0.0.1; its rate is from the worker's mean request time, its CPU from the processes' rusage (wait4), over
the whole run (a C++ process starts in milliseconds; the warm-up requests count in the bytes). ParamDb's node is
started fresh each round, runs every workload unmeasured for WARM seconds (a fresh node compiles its code for
its first seconds), then measured for DURATION seconds a phase; its CPU is read from /proc around each phase.

usage: PSLITE=/path/to/ps-lite bench/side-by-side.py [--rounds 3] [--durability wal] [--duration 3] [--warm 8]
       [--bench-args '--lz4 …']   (extra paramdb-bench arguments: --connections 2, --stream, …)
"""
import argparse, json, os, shlex, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DLL = os.path.join(ROOT, "src/ParamDb.Server/bin/Release/net10.0/paramdb.dll")
BENCH = os.path.join(ROOT, "bench/ParamDb.Bench/bin/Release/net10.0/paramdb-bench")
DRIVER_SOURCE = os.path.join(ROOT, "bench/pslite/driver.cc")
PSLITE_PORT, PARAMDB_PORT = 18700, 7470

# (row, ps-lite workload spec, bytes of values per request, ParamDb workload, op, metric)
# A ps-lite workload whose name starts with "push" times pushes only; "lat" times pulls only, after one push.
ROWS = [
    ("W-dense push", "pushdense:4096:256:{n}", 4096 * 256 * 4, "dense-explicit", "push", "MB/s"),
    ("W-dense pull", "dense:4096:256:{n}", 4096 * 256 * 4, "dense-explicit", "pull", "MB/s"),
    ("W-sparse push", "pushsparse:10000:64:{n}:keys=random", 10000 * 64 * 4, "sparse", "push", "M keys/s"),
    ("W-sparse pull", "sparse:10000:64:{n}:keys=random", 10000 * 64 * 4, "sparse", "pull", "M keys/s"),
    ("W-small pull p99", "lat:1:64:5000", 64 * 4, "small", "pull", "p99 ms"),
]


def build_pslite(pslite):
    if not os.path.isfile(os.path.join(pslite, "include/ps/ps.h")):
        sys.exit(f"PSLITE={pslite} holds no copy of dmlc/ps-lite (include/ps/ps.h is missing): see the top of this file")
    if os.path.realpath(pslite).startswith(os.path.realpath(ROOT) + os.sep):
        sys.exit("PSLITE must be outside this repository: ps-lite's source is never committed here")
    lib = os.path.join(pslite, "build/libps.a")
    if not os.path.isfile(lib):
        subprocess.run(["make", "-j2", "ps", "DEPS_PATH=/usr", "PROTOC=protoc"], cwd=pslite, check=True, stdout=subprocess.DEVNULL)
    driver = os.path.join(pslite, "paramdb-driver")
    if not os.path.isfile(driver) or os.path.getmtime(driver) < os.path.getmtime(DRIVER_SOURCE):
        subprocess.run(["g++", "-std=c++14", "-O3", "-I" + os.path.join(pslite, "include"), "-I" + os.path.join(pslite, "src"),
                        DRIVER_SOURCE, lib, "-lzmq", "-lprotobuf", "-pthread", "-o", driver], check=True)
    return driver


def run_pslite(driver, spec, bytes_per_request):
    """One workload on a fresh scheduler, server and worker: the worker's RESULT lines and each process's CPU seconds."""
    env = dict(os.environ, DMLC_NUM_SERVER="1", DMLC_NUM_WORKER="1", DMLC_PS_ROOT_PORT=str(PSLITE_PORT),
               DMLC_PS_ROOT_URI="127.0.0.1", DMLC_NODE_HOST="127.0.0.1")
    procs = {}
    for role in ("scheduler", "server", "worker"):
        procs[role] = subprocess.Popen([driver, spec], env=dict(env, DMLC_ROLE=role), stdout=subprocess.PIPE if role == "worker" else subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, text=True)
    out = procs["worker"].stdout.read()
    cpu = {}
    for role, p in procs.items():
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0: sys.exit(f"ps-lite {role} of {spec} exited with {p.returncode}")
        cpu[role] = usage.ru_utime + usage.ru_stime
    results = {}
    for line in out.splitlines():
        if line.startswith("RESULT"):
            fields = dict(f.split("=", 1) for f in line.split()[2:])
            results[fields["op"]] = fields
    first = next(iter(results.values()))
    reps = int(first["reps"]) + 3   # the driver's 3 warm-up requests (BENCH_WARMUP) moved bytes too
    moved = reps * bytes_per_request * (1 if spec.startswith("push") else 2)
    return results, cpu["server"] / (moved / 1e9), cpu["worker"] / (moved / 1e9)


def pslite_round(driver, reps):
    row = {}
    for name, spec, size, _, op, metric in ROWS:
        results, server_gb, worker_gb = run_pslite(driver, spec.format(n=reps[name]), size)
        r = results[op]
        mean_s = float(r["mean_us"]) / 1e6
        value = {"MB/s": size / 1e6 / mean_s, "M keys/s": int(r["nkeys"]) / mean_s / 1e6, "p99 ms": float(r["p99_us"]) / 1e3}[metric]
        row[name] = (value, server_gb, worker_gb) if op == "push" else (value, None, None)
    return row


def paramdb_round(durability, duration, warm, bench_args):
    data = tempfile.mkdtemp(prefix="paramdb-side-by-side-")
    log = open(os.path.join(data, "node.log"), "w")
    node = subprocess.Popen(["dotnet", DLL, "--data", os.path.join(data, "n"), "--listen", f"127.0.0.1:{PARAMDB_PORT}",
                             "--listen-h2", f"127.0.0.1:{PARAMDB_PORT + 1}", "--durability", durability], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PARAMDB_PORT}/v1/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or node.poll() is not None: sys.exit(f"the node did not start: see {data}/node.log")
                time.sleep(0.2)
        url = f"http://127.0.0.1:{PARAMDB_PORT + 1 if '--stream' in bench_args or '--http2' in bench_args else PARAMDB_PORT}"
        common = [BENCH, "--url", url, "--workload", "dense,sparse,small", "--keys", "explicit"] + bench_args
        if warm > 0: subprocess.run(common + ["--duration", str(warm)], check=True, stdout=subprocess.DEVNULL)
        report = os.path.join(data, "bench.json")
        subprocess.run(common + ["--duration", str(duration), "--node-pids", str(node.pid), "--json", report], check=True, stdout=subprocess.DEVNULL)
        results = {(r["workload"], r["op"]): r for r in json.load(open(report))["results"]}
    finally:
        node.terminate()
        node.wait()
        subprocess.run(["rm", "-rf", data])
    row = {}
    for name, _, size, workload, op, metric in ROWS:
        r = results[(workload, op)]
        value = {"MB/s": r["mbPerSecond"], "M keys/s": r["keysPerSecond"] / 1e6, "p99 ms": r["p99Ms"]}[metric]
        row[name] = (value, r["nodeCpuSecondsPerGB"], r["benchCpuSecondsPerGB"]) if op == "push" else (value, None, None)
    return row


def fmt(x, digits=2):
    return "–" if x is None else f"{x:,.{digits}f}"


def table(title, pslite, paramdb):
    print(f"\n{title}")
    print("| workload | ps-lite | ParamDb | ParamDb ÷ ps-lite | CPU s/GB: ps-lite server, worker | CPU s/GB: ParamDb node, bench |")
    print("|---|---|---|---|---|---|")
    for name, *_, metric in ROWS:
        (a, sa, wa), (b, sb, wb) = pslite[name], paramdb[name]
        digits = 0 if metric == "MB/s" else 2
        print(f"| {name} ({metric}) | {fmt(a, digits)} | {fmt(b, digits)} | {b / a:.2f}× | {fmt(sa)}, {fmt(wa)} | {fmt(sb)}, {fmt(wb)} |")


def median_row(rows):
    out = {}
    for name, *_ in ROWS:
        cols = list(zip(*(r[name] for r in rows)))
        out[name] = tuple(None if any(v is None for v in c) else statistics.median(c) for c in cols)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--durability", default="wal", choices=["wal", "fsync", "checkpoint"])
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--warm", type=float, default=8)
    ap.add_argument("--bench-args", default="")
    args = ap.parse_args()
    pslite = os.environ.get("PSLITE") or sys.exit("PSLITE is not set: see the top of this file")
    driver = build_pslite(pslite)
    for project in ("src/ParamDb.Server", "bench/ParamDb.Bench"):
        subprocess.run(["dotnet", "build", "-c", "Release", os.path.join(ROOT, project)], check=True, stdout=subprocess.DEVNULL)
    # ps-lite requests per run: about 2 s of each at this machine's ps-lite rates.
    reps = {"W-dense push": 1000, "W-dense pull": 400, "W-sparse push": 1000, "W-sparse pull": 400, "W-small pull p99": 0}
    bench_args = shlex.split(args.bench_args)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, ParamDb --durability {args.durability}, paramdb-bench {' '.join(bench_args) or '(1 connection, REST)'}")
    ps_rows, db_rows = [], []
    for r in range(args.rounds):
        first_pslite = r % 2 == 0
        for side in (("pslite", "paramdb") if first_pslite else ("paramdb", "pslite")):
            if side == "pslite": ps_rows.append(pslite_round(driver, reps))
            else: db_rows.append(paramdb_round(args.durability, args.duration, args.warm, bench_args))
        table(f"round {r + 1} ({'ps-lite' if first_pslite else 'ParamDb'} first)", ps_rows[-1], db_rows[-1])
    ratios = {name: statistics.median(d[name][0] / p[name][0] for p, d in zip(ps_rows, db_rows)) for name, *_ in ROWS}
    table(f"medians of {args.rounds} rounds", median_row(ps_rows), median_row(db_rows))
    print("\nmedian of the rounds' ratios: " + ", ".join(f"{name} {ratio:.2f}×" for name, ratio in ratios.items()))


if __name__ == "__main__":
    main()
