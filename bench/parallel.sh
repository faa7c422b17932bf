#!/usr/bin/env bash
# Times 8 independent lifecycle scenarios (bench/lifecycle.yaml's, eight times) with 1 worker and with 8,
# and prints the ratio parallel / serial. Usage: bench/parallel.sh [RUNS] (default 3, medians).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
cargo build --release -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/eight.yaml" <<'PY'
import sys
scenario = open("bench/lifecycle.yaml").read().split("scenarios:\n", 1)[1]
body = "".join(scenario.replace("busybox httpd lifecycle", f"lifecycle {i}") for i in range(1, 9))
open(sys.argv[1], "w").write("scenarios:\n" + body)
PY
time_run() { local s e; s=$(date +%s.%N); target/release/seatrial run "$dir/eight.yaml" --junit "$dir/j.xml" -q --test-threads "$1" >/dev/null 2>&1; e=$(date +%s.%N); python3 -c "print($e - $s)"; }
serial=(); parallel=()
for _ in $(seq 1 "$RUNS"); do serial+=("$(time_run 1)"); parallel+=("$(time_run 8)"); done
python3 - "${serial[*]}" "${parallel[*]}" <<'PY'
import statistics, sys
s, p = (statistics.median(map(float, a.split())) for a in sys.argv[1:3])
print(f"8 scenarios, 1 worker: median {s:.2f} s; 8 workers: median {p:.2f} s; ratio {p / s:.2f}")
PY
