#!/usr/bin/env bash
# wal ÷ checkpoint push throughput (docs/durability.md): ROUNDS rounds, each starting a fresh Release node in
# `checkpoint` mode, then one in `wal` mode, and running W-dense and W-sparse pushes against each, so the two
# modes share the machine's mood of the moment and can be compared as a ratio within each round.
# Each round first measures the disk: sequential 4 MiB O_DIRECT writes of 4 GiB into the folder the nodes' data
# goes to, the most a log that keeps every pushed byte can sustain (docs/durability.md, "What bounds wal mode").
# usage: [BENCH_ARGS='--duration 3'] bench/wal-ratio.sh [ROUNDS]
#   (build first: dotnet build -c Release src/ParamDb.Server bench/ParamDb.Bench); BENCH_ARGS go to every paramdb-bench run
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-4}
B=bench/ParamDb.Bench/bin/Release/net10.0/paramdb-bench
DLL=src/ParamDb.Server/bin/Release/net10.0/paramdb.dll
URL=http://127.0.0.1:7421
tmp=${TMPDIR:-/tmp}
for r in $(seq 1 "$rounds"); do
  probe=$(mktemp "$tmp/paramdb-disk-XXXX")
  # A file system without O_DIRECT (tmpfs) refuses the probe: the round still runs, without a disk figure.
  disk=$(dd if=/dev/zero of="$probe" bs=4M count=1024 oflag=direct 2>&1 | awk '/copied/ { printf "%.0f MB/s", $1 / $(NF-3) / 1e6 }' || true)
  rm -f "$probe"
  echo "round $r disk: ${disk:-not measured (no O_DIRECT here)}"
  for mode in checkpoint wal; do
    data=$(mktemp -d "$tmp/paramdb-wal-ratio-XXXX")
    dotnet "$DLL" --data "$data" --memory 2g --listen 127.0.0.1:7421 --listen-h2 127.0.0.1:7422 --durability "$mode" > "$data.log" 2>&1 &
    node=$!
    for _ in $(seq 1 150); do curl -sf "$URL/v1/health" > /dev/null && break; sleep 0.2; done
    dense=$("$B" --url "$URL" --workload dense --keys range --connections 2 --repeat 3 ${BENCH_ARGS:-} | awk '$2 == "push" { print $4 " MB/s" }')
    sparse=$("$B" --url "$URL" --workload sparse --connections 2 --repeat 3 ${BENCH_ARGS:-} | awk '$2 == "push" { print $5 " keys/s" }')
    echo "round $r $mode: W-dense push $dense, W-sparse push $sparse"
    kill "$node"; wait "$node" 2> /dev/null || true
    rm -rf "$data" "$data.log"
  done
done
