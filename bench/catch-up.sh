#!/usr/bin/env bash
# Catching a returning node up beside the pushes (docs/benchmarks.md, "Catching a node up"): three nodes at R = 2,
# a table of GIB GiB of rows (dim 64, add), and W-dense pushes through the smart client. It measures the push rate
# with every node up, then kills n3, restarts it, and measures the push rate again while n1 and n2 send n3 every arc
# it holds (about two thirds of the rows) at --resync-rate, and how long until n3 is counted up again.
# With STAND_IN=1 (re-replication, docs/benchmarks.md "Re-replication"), n3 stays down: n1 and n2 send each other
# the arcs n3 held (n1 stands in for the arcs n2 serves, and n2 for n1's), and it measures from n3 declared down
# until every arc has two copies again.
# usage: [GIB=1.5] [RATE=128] [DURATION=8] [PUSH_DURING=0] [STAND_IN=1] [KEEP_LOGS=DIR] [NODE_ARGS=…] bench/catch-up.sh [ROUNDS]
#   PUSH_DURING=0: no pushes while n3 catches up (the copy alone); KEEP_LOGS: copy the nodes' logs there
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
gib=${GIB:-1.5}; rate=${RATE:-128}; duration=${DURATION:-8}
dotnet build -c Release src/ParamDb.Server > /dev/null && dotnet build -c Release bench/ParamDb.Bench > /dev/null
DLL=src/ParamDb.Server/bin/Release/net10.0/paramdb.dll
B=bench/ParamDb.Bench/bin/Release/net10.0/paramdb-bench
P=7560
tmp=$(mktemp -d "${TMPDIR:-/tmp}/paramdb-catch-up-XXXX")
pids=(0 0 0)
trap 'kill "${pids[@]}" 2> /dev/null || true; rm -rf "$tmp"' EXIT

start() {   # start NODE-INDEX EXTRA-ARGS… ; waits until it listens
  local i=$1; shift
  # shellcheck disable=SC2086 # NODE_ARGS is a list of options
  dotnet "$DLL" --data "$tmp/n$i" --memory 3g --listen "127.0.0.$i:$P" --listen-h2 "127.0.0.$i:$((P + 1))" \
    --raft "127.0.0.$i:$((P + 2))" --node-id "n$i" --resync-rate "$rate" ${NODE_ARGS:-} "$@" >> "$tmp/n$i.log" 2>&1 &
  pids[i - 1]=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.$i:$P/v1/health" > /dev/null && return; sleep 0.1; done
  echo "node $i did not start: $(tail -3 "$tmp/n$i.log")" >&2; exit 1
}
state_of_n3() { curl -sf "http://127.0.0.1:$P/v1/cluster" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
print(next(n["state"] for n in v["nodes"] if n["id"] == "n3").lower(), v["underReplicated"])' || echo "none -1"; }
resynced() { for i in 1 2; do curl -sf "http://127.0.0.$i:$P/v1/health"; echo; done | /usr/bin/python3 -c '
import json, sys
print(sum((json.loads(l).get("replication") or {}).get("resyncedBytes", 0) for l in sys.stdin if l.strip()))'; }
push_rate() { /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]
p = next(x for x in r if x["op"] == "push")
print("%.0f MB/s, p50 %.1f ms, p99 %.1f ms" % (p["mbPerSecond"], p["p50Ms"], p["p99Ms"]))' "$1"; }

for r in $(seq 1 "$rounds"); do
  echo "### round $r: $gib GiB of rows, --resync-rate $rate MiB/s"
  rm -rf "$tmp"/n*
  start 1 --cluster-init
  start 2 --join "127.0.0.1:$P"
  start 3 --join "127.0.0.1:$P"
  until [ "$(state_of_n3)" = "up 0" ]; do sleep 0.2; done
  curl -sf -X PUT "http://127.0.0.1:$P/v1/tables/big" -H 'content-type: application/json' -d '{"dim":64}' > /dev/null
  # Loaded with dense pushes of 65,536 rows (16 MiB) through n1, which routes each slice to its primary.
  /usr/bin/python3 - "$gib" "http://127.0.0.1:$P/v1/tables/big/push" <<'PY'
import struct, sys, time, urllib.request
gib, url = float(sys.argv[1]), sys.argv[2]
rows, dim, step = int(gib * 2**30 / (64 * 4)), 64, 65536
values = bytes(4 * dim * step)
t = time.time()
for first in range(0, rows, step):
    n = min(step, rows - first)
    body = b"PDB1" + struct.pack("<HHIIQQ", 1, 3, dim, 0, n, first) + values[: 4 * dim * n]
    urllib.request.urlopen(urllib.request.Request(url, body, {"content-type": "application/x-paramdb-kv"})).read()
print(f"loaded {rows:,} rows ({rows * dim * 4 / 2**30:.2f} GiB) in {time.time() - t:.1f} s")
PY
  "$B" --url "http://127.0.0.1:$P" --cluster --workload dense --keys range --duration "$duration" --json "$tmp/before.json" > /dev/null
  echo "pushes, every node up:        $(push_rate "$tmp/before.json")"
  kill -9 "${pids[2]}"; wait "${pids[2]}" 2> /dev/null || true
  until [ "$(state_of_n3 | cut -d' ' -f1)" = "down" ]; do sleep 0.1; done
  base=$(resynced)
  stand_in=${STAND_IN:-0}
  if [ "$stand_in" = 1 ]; then done_when="down 0"; what="every arc of n3 re-replicated"; else done_when="up 0"; what="n3 caught up"; start 3; fi
  t0=$(date +%s.%N)
  read -r c1 c2 <<< "$(ps -o cputimes= -p "${pids[0]}","${pids[1]}" | tr '\n' ' ')"
  bench=""
  if [ "${PUSH_DURING:-1}" = 1 ]; then
    # Tried again if its table create meets an election (n3 may have been the Raft leader).
    (for _ in 1 2 3; do
      "$B" --url "http://127.0.0.1:$P" --cluster --workload dense --keys range --duration "$duration" --json "$tmp/during.json" > /dev/null 2>&1 && break
    done) &
    bench=$!
  fi
  until [ "$(state_of_n3)" = "$done_when" ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  read -r d1 d2 <<< "$(ps -o cputimes= -p "${pids[0]}","${pids[1]}" | tr '\n' ' ')"
  c3=$( [ "$stand_in" = 1 ] && echo - || ps -o cputimes= -p "${pids[2]}")
  [ -n "$bench" ] && wait "$bench"
  sent=$(( $(resynced) - base ))
  [ -n "$bench" ] && echo "pushes, meanwhile:            $(push_rate "$tmp/during.json")"
  /usr/bin/python3 -c "print(f'$what: {$sent / 2**30:.2f} GiB sent in {$t1 - $t0:.1f} s')"
  echo "CPU seconds meanwhile (the pushes included): n1 $((d1 - c1)), n2 $((d2 - c2)), n3 $c3"
  grep -h "caught up:" "$tmp"/n1.log "$tmp"/n2.log | tail -2 | sed 's/^/  /'
  [ -n "${KEEP_LOGS:-}" ] && cp "$tmp"/n*.log "$KEEP_LOGS"/
  kill "${pids[@]}" 2> /dev/null || true; wait 2> /dev/null || true
done
