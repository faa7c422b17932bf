#!/usr/bin/env bash
# `seatrial check` on 1,000 generated scenario files (each a copy of the demo scenarios with its own names),
# timed with hyperfine. Usage: bench/check-1000.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
out=bench/out/check-1000
rm -rf "$out" && mkdir -p "$out/files"
cp -r scenarios/files "$out/files/files"
for i in $(seq -w 1 1000); do
  sed -e "s#\.\./fixtures#../../../../fixtures#g" -e "s/- name: /- name: n$i /" scenarios/static-site.yaml > "$out/files/s$i.yaml"
done
cargo build --release -q
bin=target/release/seatrial
"$bin" check "$out/files" >/dev/null
hyperfine --warmup 2 --runs "$runs" --export-json "$out/hyperfine.json" "$bin check $out/files"
