#!/usr/bin/env python3
"""Costs of named snapshots on a node holding 1 GiB of rows (docs/snapshots.md).

Starts a Release node (build it first: dotnet build -c Release src/ParamDb.Server), fills a table with
1,048,576 rows of dim 256 (1 GiB of floats), takes a checkpoint, then per round:
  1. creates a snapshot (a checkpoint plus the copy of its files) and reports its time and bytes;
  2. rewrites every row, then restores the snapshot: the restore's time and how long requests were held;
  3. exports the table from the snapshot and reports the download rate.

usage: bench/snapshots.py [--durability wal|fsync|checkpoint] [--repeat N]
Only the standard library; the node and the KV block come from bench/durability.py.
"""
import argparse, http.client, json, os, shutil, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import durability as d  # noqa: E402


def download(path):
    c = http.client.HTTPConnection("127.0.0.1", d.PORT, timeout=600)
    c.request("GET", path)
    r = c.getresponse()
    total = 0
    while chunk := r.read(1 << 20):
        total += len(chunk)
    if r.status != 200:
        sys.exit(f"GET {path}: {r.status}")
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--durability", default="wal")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="paramdb-snapshots-")
    node, _ = d.start(data, args.durability)
    try:
        d.call("PUT", "/v1/tables/big", json.dumps({"dim": d.DIM}))
        for first in range(0, d.ROWS, d.BLOCK):
            d.call("POST", "/v1/tables/big/push", d.block(first, d.BLOCK), "application/x-paramdb-kv")
        d.call("POST", "/v1/checkpoint")
        print("| round | create | snapshot bytes | restore | requests held | export from snapshot |")
        print("|---|---|---|---|---|---|")
        for run in range(args.repeat):
            t = time.monotonic()
            info = d.call("POST", "/v1/snapshots", json.dumps({"name": f"s{run}"}))
            create = time.monotonic() - t
            for first in range(0, d.ROWS, d.BLOCK):
                d.call("POST", "/v1/tables/big/push", d.block(first, d.BLOCK), "application/x-paramdb-kv")
            restored = d.call("POST", f"/v1/snapshots/s{run}/restore")
            t = time.monotonic()
            size = download(f"/v1/snapshots/s{run}/tables/big/export")
            export = time.monotonic() - t
            print(f"| {run + 1} | {create:.2f} s | {info['bytes'] / 2**30:.2f} GiB | {restored['durationMs'] / 1000:.2f} s "
                  f"| {restored['pausedMs'] / 1000:.2f} s | {size / 1e6 / export:.0f} MB/s ({export:.2f} s) |")
            d.call("DELETE", f"/v1/snapshots/s{run}")
    finally:
        node.kill()
        node.wait()
        shutil.rmtree(data, ignore_errors=True)
        if os.path.exists(data + ".log"):
            os.remove(data + ".log")


if __name__ == "__main__":
    main()
