#!/usr/bin/env python3
# What a restart costs with a table larger than memory: 1.5 GiB of rows (dim 256, 4 MiB range pushes) into a
# node with --memory 256m, one checkpoint, kill -9, then two restarts, each timed from the node's own
# "Opened store ... in N ms" line. A start checks the checksum of every on-disk log segment the recovered
# checkpoint stands on (docs/durability.md, "Recovery, step by step"), so this is where that shows.
# usage: python3 bench/open-cost.py PATH/TO/paramdb.dll LABEL   (a Release build; ports 7431/7432)
import http.client, struct, subprocess, sys, tempfile, time, os, signal, re, shutil
dll = sys.argv[1]; label = sys.argv[2]
data = tempfile.mkdtemp(prefix="paramdb-open-")
def start():
    log = open(data + ".log", "a")
    p = subprocess.Popen(["dotnet", dll, "--data", data, "--memory", "256m", "--checkpoint-interval", "0", "--checkpoint-wal", "0",
                          "--listen", "127.0.0.1:7431", "--listen-h2", "127.0.0.1:7432"], stdout=log, stderr=log)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", 7431, timeout=5); c.request("GET", "/v1/health"); c.getresponse().read(); return p
        except Exception: time.sleep(0.1)
    raise SystemExit("no start")
def call(method, path, body=None, ctype="application/json"):
    c = http.client.HTTPConnection("127.0.0.1", 7431, timeout=600)
    c.request(method, path, body=body, headers={"Content-Type": ctype} if body is not None else {})
    r = c.getresponse(); b = r.read(); assert r.status < 300, (r.status, b); return b
p = start()
call("PUT", "/v1/tables/big", b'{"dim":256}')
dim, count = 256, 4096
values = struct.pack("<f", 1.0) * (dim * count)
for i in range(384):   # 384 x 4 MiB = 1.5 GiB of rows against 256 MiB of log memory
    body = b"PDB1" + struct.pack("<HHIIQQ", 1, 3, dim, 0, count, i * count) + values
    call("POST", "/v1/tables/big/push", body, "application/x-paramdb-kv")
call("POST", "/v1/checkpoint")
p.send_signal(signal.SIGKILL); p.wait()
logsize = sum(os.path.getsize(os.path.join(data, "log", f)) for f in os.listdir(os.path.join(data, "log")))
for run in range(2):
    t = time.time(); p = start(); wall = time.time() - t
    p.send_signal(signal.SIGKILL); p.wait()
    opened = [l for l in open(data + ".log") if "Opened store" in l][-1]
    ms = re.search(r"in (\d+) ms", opened).group(1)
    print(f"{label}: on-disk log {logsize/2**30:.2f} GiB; restart {run+1}: store opened in {ms} ms, process ready in {wall:.1f} s")
print(label + ": " + [l for l in open(data + ".log") if "completed in" in l][0].strip()[-120:])
shutil.rmtree(data); os.remove(data + ".log")
