#!/usr/bin/env bash
# A/B of a single node, two builds in the same run (docs/benchmarks.md): ROUNDS rounds, each starting a fresh
# Release node of BASE, then one of the working tree, and running the same paramdb-bench command against each,
# with the node's CPU time read from /proc (node s/GB), so the two builds share the machine's mood of each round
# (the order alternates from round to round).
# Each node first runs the same command unmeasured for WARM seconds a phase (default 8): a fresh node compiles its
# code for its first seconds, and measured at once W-dense cost it ~2x the CPU per GB of a warmed node.
# usage: [WARM=8] bench/ab.sh BASE [ROUNDS] [-- paramdb-bench args]   (default args: --workload all --duration 3)
#   e.g. bench/ab.sh 3d700bc 3 -- --workload dense,sparse --duration 3
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1; shift
rounds=${1:-3}; [ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bench_args=("$@"); [ ${#bench_args[@]} -eq 0 ] && bench_args=(--workload all --duration 3)
tmp=${TMPDIR:-/tmp}
tree=$(mktemp -d "$tmp/paramdb-ab-XXXX")
git worktree add --detach "$tree" "$base" > /dev/null
trap 'git worktree remove --force "$tree"' EXIT
dotnet build -c Release "$tree/src/ParamDb.Server" > /dev/null
dotnet build -c Release src/ParamDb.Server > /dev/null && dotnet build -c Release bench/ParamDb.Bench > /dev/null
B=bench/ParamDb.Bench/bin/Release/net10.0/paramdb-bench
for r in $(seq 1 "$rounds"); do
  # Odd rounds run the base first, even rounds the new build first, so neither always gets the fresher machine.
  order="base new"; [ $((r % 2)) -eq 0 ] && order="new base"
  for side in $order; do
    dll=src/ParamDb.Server/bin/Release/net10.0/paramdb.dll
    [ "$side" = base ] && dll=$tree/src/ParamDb.Server/bin/Release/net10.0/paramdb.dll
    data=$(mktemp -d "$tmp/paramdb-ab-data-XXXX")
    dotnet "$dll" --data "$data" --memory 2g --listen 127.0.0.1:7520 --listen-h2 127.0.0.1:7521 > "$data.log" 2>&1 &
    node=$!
    for _ in $(seq 1 150); do curl -sf http://127.0.0.1:7520/v1/health > /dev/null && break; sleep 0.2; done
    echo "== round $r $side ($( [ "$side" = base ] && echo "$base" || echo "$(git rev-parse --short HEAD)+working tree"))"
    [ "${WARM:-8}" -gt 0 ] && "$B" --url http://127.0.0.1:7520 "${bench_args[@]}" --duration "${WARM:-8}" > /dev/null
    "$B" --url http://127.0.0.1:7520 --node-pids "$node" "${bench_args[@]}" | sed -n '/^workload/,/^$/p'
    kill "$node"; wait "$node" 2> /dev/null || true
    rm -rf "$data" "$data.log"
  done
done
