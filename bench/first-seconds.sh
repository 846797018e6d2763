#!/usr/bin/env bash
# A fresh node's first seconds (docs/benchmarks.md, "A fresh node"): a node started from nothing spends its first
# seconds compiling its code, so its first pushes cost more CPU and run slower. Each round starts a fresh Release
# node, pushes W-dense explicit keys at once for FIRST seconds (no warm-up), then measures two STEADY-second phases
# after a warm-up; it prints the first phase's rate and node CPU per GB beside the steady ones, and the ratio.
# usage: [FIRST=10] [STEADY=5] [WORKLOAD=dense] [NODE_ENV='DOTNET_TieredPGO=0'] bench/first-seconds.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
dotnet build -c Release src/ParamDb.Server > /dev/null && dotnet build -c Release bench/ParamDb.Bench > /dev/null
DLL=src/ParamDb.Server/bin/Release/net10.0/paramdb.dll
B=bench/ParamDb.Bench/bin/Release/net10.0/paramdb-bench
tmp=$(mktemp -d "${TMPDIR:-/tmp}/paramdb-first-XXXX")
node=
trap 'kill $node 2> /dev/null || true; rm -rf "$tmp"' EXIT
phase() {   # phase SECONDS WARMUP-REQUESTS: "MB/s node-s/GB" of the push phase
  "$B" --url http://127.0.0.1:7490 --workload "${WORKLOAD:-dense}" --keys explicit --duration "$1" --warmup "$2" --node-pids "$node" |
    awk '$2 == "push" { print $4, $NF }'
}
for r in $(seq 1 "$rounds"); do
  rm -rf "$tmp/n"
  # shellcheck disable=SC2086 # NODE_ENV is a list of assignments
  env ${NODE_ENV:-PARAMDB_FIRST_SECONDS=1} dotnet "$DLL" --data "$tmp/n" --listen 127.0.0.1:7490 --listen-h2 127.0.0.1:7491 > "$tmp/n.log" 2>&1 &
  node=$!
  for _ in $(seq 1 300); do curl -sf http://127.0.0.1:7490/v1/health > /dev/null && break; sleep 0.1; done
  read -r first first_cpu < <(phase "${FIRST:-10}" 0)
  read -r s1 s1_cpu < <(phase "${STEADY:-5}" 5)
  read -r s2 s2_cpu < <(phase "${STEADY:-5}" 5)
  /usr/bin/python3 -c "print(f'round $r: first {$first:.0f} MB/s {$first_cpu} s/GB, steady {$s1:.0f} and {$s2:.0f} MB/s {$s1_cpu} and {$s2_cpu} s/GB, first / steady {$first / (($s1 + $s2) / 2):.2f}')"
  kill $node; wait $node 2> /dev/null || true
done
