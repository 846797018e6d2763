#!/usr/bin/env python3
"""Checkpoint and recovery costs of a node holding 1 GiB of rows (docs/durability.md).

Starts a Release node (build it first: dotnet build -c Release src/ParamDb.Server), fills a table with
1,048,576 rows of dim 256 (1 GiB of floats), then:
  1. pushes 4 MiB dense blocks from two threads and takes a checkpoint 3 s in (full: the first since the
     node started) and another 2 s later (an increment): reports each one's duration, the push rate during it
     against the rate before the first (same run, as a ratio), the longest push that overlapped it, and how
     long the node says it kept pushes out at the checkpoint's start;
  2. kills the node with SIGKILL and times its restart (recovery of the checkpoint plus the log after it),
     until /v1/health answers, and the node's own "Opened store ... in N ms" figure with the parts of it the
     node logs (loading the recovered state, replaying the log).

usage: bench/durability.py [--durability wal|fsync|checkpoint] [--repeat N]
Only the standard library: the KV block is built by hand (docs/wire-format.md).
"""
import argparse, http.client, json, os, re, shutil, signal, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DLL = os.path.join(ROOT, "src/ParamDb.Server/bin/Release/net10.0/paramdb.dll")
DIM, ROWS, BLOCK = 256, 1 << 20, 4096          # 1 GiB of floats; 4 MiB per request
PORT = 7460


def block(first, count):
    header = b"PDB1" + struct.pack("<HHIIQ", 1, 3, DIM, 0, count) + struct.pack("<Q", first)
    return header + bytes(4 * DIM * count)      # zeros: pushing them still rewrites every row


def start(data, durability):
    log = open(data + ".log", "a")
    t0 = time.monotonic()
    node = subprocess.Popen(["dotnet", DLL, "--data", data, "--listen", f"127.0.0.1:{PORT}", "--listen-h2", f"127.0.0.1:{PORT + 1}",
                             "--memory", "2g", "--checkpoint-interval", "0", "--checkpoint-wal", "0", "--durability", durability], stdout=log, stderr=log)
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            c.request("GET", "/v1/health")
            if c.getresponse().status == 200:
                return node, time.monotonic() - t0
        except OSError:
            pass
        if node.poll() is not None:
            sys.exit("node exited: see " + data + ".log")
        time.sleep(0.02)


def call(method, path, body=None, ctype="application/json"):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    c.request(method, path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    payload = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {payload[:300]!r}")
    return json.loads(payload) if payload else None


def pusher(stop, buckets, t0, body):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    while not stop.is_set():
        sent = time.monotonic() - t0
        c.request("POST", "/v1/tables/big/push", body=body, headers={"Content-Type": "application/x-paramdb-kv"})
        r = c.getresponse()
        r.read()
        buckets.append((time.monotonic() - t0, len(body), sent))


def rate(buckets, a, b):
    """MB/s acknowledged in [a, b). Each push's bytes are spread over its own duration, so a window only a few
    pushes long is not rounded to whole pushes."""
    sent = 0.0
    for t, n, s in buckets:
        overlap = min(t, b) - max(s, a)
        if overlap > 0:
            sent += n * overlap / max(t - s, 1e-9)
    return sent / max(b - a, 1e-9) / 1e6


def loaded_checkpoint(buckets, t0):
    """Takes a checkpoint while the pushers run: its duration, window and the longest push that overlapped it."""
    c0 = time.monotonic() - t0
    result = call("POST", "/v1/checkpoint")
    c1 = time.monotonic() - t0
    longest = max((t - s for t, _, s in list(buckets) if s < c1 and t > c0), default=0)
    return result["durationMs"] / 1000, c0, c1, longest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--durability", default="wal")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    for run in range(args.repeat):
        data = tempfile.mkdtemp(prefix="paramdb-durability-")
        node, _ = start(data, args.durability)
        call("PUT", "/v1/tables/big", json.dumps({"dim": DIM}))
        t = time.monotonic()
        for first in range(0, ROWS, BLOCK):
            call("POST", "/v1/tables/big/push", block(first, BLOCK), "application/x-paramdb-kv")
        fill = time.monotonic() - t

        stop, buckets, t0 = threading.Event(), [], time.monotonic()
        body = block(0, BLOCK)
        threads = [threading.Thread(target=pusher, args=(stop, buckets, t0, body)) for _ in range(2)]
        for th in threads: th.start()
        time.sleep(3)
        # The first checkpoint after an open is full: the whole 1 GiB. The next one is an increment.
        full = loaded_checkpoint(buckets, t0)
        time.sleep(2)
        inc = loaded_checkpoint(buckets, t0)
        time.sleep(1)
        stop.set()
        for th in threads: th.join()
        before = rate(buckets, 0.5, full[1])

        node.send_signal(signal.SIGKILL)
        node.wait()
        # How long each checkpoint kept pushes out at its start, as the node logged it (full first, then the increment).
        held = [int(ms) for ms in re.findall(r"\((?:full|incremental)\) completed in \d+ ms; pushes held (\d+) ms", open(data + ".log").read())]
        held += [None] * (2 - len(held))
        node, restart = start(data, args.durability)
        text = open(data + ".log").read()
        opened = re.findall(r"Opened store .* in (\d+) ms", text)
        # The parts of the open this build logs: loading the recovered state, replaying the log (and its read waits).
        parts = []
        loaded = re.findall(r"Loaded the recovered .* in (\d+) ms", text)
        if loaded: parts.append(f"state {int(loaded[-1]) / 1000:.2f} s")
        replayed = re.findall(r"Replayed (\d+) write-ahead log records after checkpoint cut \d+ in (\d+) ms", text)
        if replayed: parts.append(f"replay of {replayed[-1][0]} records {int(replayed[-1][1]) / 1000:.2f} s")
        waited = re.findall(r"read (\d+) MiB in \d+ segments; applying waited (\d+) ms", text)
        if waited: parts.append(f"{waited[-1][0]} MiB read, {int(waited[-1][1]) / 1000:.2f} s waiting for reads")
        node.send_signal(signal.SIGTERM)
        node.wait()
        loaded = "".join(f"{name} checkpoint under load {d:.2f} s (pushes {rate(buckets, c0, c1):.0f} MB/s during, "
                         f"{rate(buckets, c0, c1) / before:.0%}, longest push {longest * 1000:.0f} ms"
                         + (f", held {h} ms at its start" if h is not None else "") + "); "
                         for name, (d, c0, c1, longest), h in (("full", full, held[0]), ("incremental", inc, held[1])))
        print(f"{args.durability} run {run + 1}: fill 1 GiB {fill:.1f} s ({1024 / fill:.0f} MiB/s); pushes {before:.0f} MB/s before; "
              + loaded + f"restart to healthy {restart:.2f} s (store open {int(opened[-1]) / 1000:.2f} s"
              + "".join("; " + p for p in parts) + ")")
        shutil.rmtree(data, ignore_errors=True)
        os.remove(data + ".log")


if __name__ == "__main__":
    main()
