#!/usr/bin/env bash
# What a cluster costs (docs/benchmarks.md, "A cluster"): node CPU seconds per GB, summed over the nodes, for the
# usual workloads through one node, through three nodes with the smart client (each node gets its own keys), and
# through three nodes with forwarding (everything sent to n1, which routes it). On 2 cores three nodes cannot be
# faster than one, so the figure is the cost, not the rate. ROUNDS rounds, the three set-ups interleaved.
# Each set-up first runs the same workloads unmeasured for WARM seconds a phase (default 12): a fresh node's
# tiered JIT compiles for its first seconds (a quarter to half a core), three fresh nodes compile three times
# as much, and a 3 s measurement of fresh processes charges that to the bytes (it read as 2.5-3.3x for sparse).
# The fourth set-up is the floor: three independent nodes with no cluster code, each request cut by hand into
# three key ranges sent at once (paramdb-bench --shards). What it costs over one node is what three processes
# sharing two cores cost, whatever the design.
# usage: [NODE_ARGS='--durability checkpoint'] [WARM=12] bench/cluster-cost.sh [ROUNDS] [-- paramdb-bench args]
#   (default bench args: --workload dense,sparse --keys range --duration 3); NODE_ARGS go to every node
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; [ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
args=("$@"); [ ${#args[@]} -eq 0 ] && args=(--workload dense,sparse --keys range --duration 3)
dotnet build -c Release src/ParamDb.Server > /dev/null && dotnet build -c Release bench/ParamDb.Bench > /dev/null
DLL=src/ParamDb.Server/bin/Release/net10.0/paramdb.dll
B=bench/ParamDb.Bench/bin/Release/net10.0/paramdb-bench
P=7530
tmp=$(mktemp -d "${TMPDIR:-/tmp}/paramdb-cluster-cost-XXXX")
pids=()
trap 'kill "${pids[@]}" 2> /dev/null || true; rm -rf "$tmp"' EXIT

start() {   # start NODE-INDEX EXTRA-ARGS… ; waits until it listens
  local i=$1; shift
  # shellcheck disable=SC2086 # NODE_ARGS is a list of options
  dotnet "$DLL" --data "$tmp/n$i" --memory 512m --listen "127.0.0.$i:$P" --listen-h2 "127.0.0.$i:$((P + 1))" ${NODE_ARGS:-} "$@" > "$tmp/n$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.$i:$P/v1/health" > /dev/null && return; sleep 0.2; done
  echo "node $i did not start: $(tail -3 "$tmp/n$i.log")" >&2; exit 1
}
replication() {   # replication HTTP-PORT-NODES… : "pushed replicated" bytes summed over the nodes' GET /v1/health
  for i in "$@"; do curl -sf "http://127.0.0.$i:$P/v1/health"; echo; done | /usr/bin/python3 -c '
import json, sys
r = [json.loads(l).get("replication") or {} for l in sys.stdin if l.strip()]
print(sum(x.get("pushedBytes", 0) for x in r), sum(x.get("replicatedBytes", 0) for x in r))'
}
stop_all() { kill "${pids[@]}" 2> /dev/null || true; wait "${pids[@]}" 2> /dev/null || true; pids=(); rm -rf "$tmp"/n*; }
run() {   # run LABEL URL PIDS BENCH-ARGS…
  local label=$1 url=$2 node_pids=$3; shift 3
  echo "== $label"
  [ "${WARM:-12}" -gt 0 ] && "$B" --url "$url" "$@" "${args[@]}" --duration "${WARM:-12}" > /dev/null
  local p0 r0 p1 r1
  [ -n "${REPLICATED:-}" ] && read -r p0 r0 < <(replication 1 2 3)
  "$B" --url "$url" --node-pids "$node_pids" "$@" "${args[@]}" | sed -n '/^workload/,/^$/p'
  if [ -n "${REPLICATED:-}" ]; then
    read -r p1 r1 < <(replication 1 2 3)
    echo "replicated / pushed bytes, all measured pushes: $(/usr/bin/python3 -c "print(f'{($r1 - $r0) / max(1, $p1 - $p0):.3f}')")"
  fi
}

for r in $(seq 1 "$rounds"); do
  echo "### round $r"
  start 1
  run "1 node, ParamDbClient" "http://127.0.0.1:$P" "${pids[0]}" --client
  stop_all
  # R = 1 first: no backups, what routing alone costs; then the default R = 2, where every push is also written
  # on a backup before it is acknowledged (docs/replication.md).
  start 1 --raft "127.0.0.1:$((P + 2))" --node-id n1 --cluster-init --replicas 1
  start 2 --raft "127.0.0.2:$((P + 2))" --node-id n2 --join "127.0.0.1:$P"
  start 3 --raft "127.0.0.3:$((P + 2))" --node-id n3 --join "127.0.0.1:$P"
  all=$(IFS=,; echo "${pids[*]}")
  run "3 nodes R=1, smart client" "http://127.0.0.1:$P" "$all" --cluster
  run "3 nodes R=1, smart client, 4 connections" "http://127.0.0.1:$P" "$all" --cluster --connections 4
  stop_all
  start 1 --raft "127.0.0.1:$((P + 2))" --node-id n1 --cluster-init
  start 2 --raft "127.0.0.2:$((P + 2))" --node-id n2 --join "127.0.0.1:$P"
  start 3 --raft "127.0.0.3:$((P + 2))" --node-id n3 --join "127.0.0.1:$P"
  all=$(IFS=,; echo "${pids[*]}")
  # The counters of GET /v1/health give replicated ÷ pushed bytes over the measured pushes of both workloads.
  # Four workers on one connection each: dense pushes all hit the same 4,096 keys (the hot-key case, where
  # replication after aggregation ships a row once per batch however many pushes touched it); sparse ones do not
  # share keys.
  REPLICATED=1 run "3 nodes R=2, smart client" "http://127.0.0.1:$P" "$all" --cluster
  REPLICATED=1 run "3 nodes R=2, smart client, 4 connections" "http://127.0.0.1:$P" "$all" --cluster --connections 4
  run "3 nodes, forwarding through n1" "http://127.0.0.1:$P" "$all" --client --routing off
  stop_all
  start 1; start 2; start 3
  all=$(IFS=,; echo "${pids[*]}")
  run "3 independent nodes, cut by hand" "http://127.0.0.1:$P" "$all" --shards "http://127.0.0.1:$P,http://127.0.0.2:$P,http://127.0.0.3:$P"
  stop_all
done
