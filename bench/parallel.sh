#!/usr/bin/env bash
# Times 8 independent lifecycles with 1 worker and with 8, and prints the ratio parallel / serial, two ways:
# seatrial (bench/lifecycle.yaml's scenario, eight times) and the docker CLI + curl script (8 background
# jobs), so that the engine's own floor on this machine is measured beside seatrial.
# Usage: bench/parallel.sh [RUNS] (default 3, medians).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
IMAGE=${BUSYBOX_IMAGE:-seatrial/busybox}
CMD='trap "exit 0" TERM; mkdir -p /www; echo ok > /www/index.html; httpd -f -p 8080 -h /www & wait'
LABEL=org.seatrial.run=bench-$$
# shellcheck source=bench/lib.sh
source bench/lib.sh
cargo build --release -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"; docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f -v >/dev/null' EXIT
python3 - "$dir/eight.yaml" <<'PY'
import sys
scenario = open("bench/lifecycle.yaml").read().split("scenarios:\n", 1)[1]
body = "".join(scenario.replace("busybox httpd lifecycle", f"lifecycle {i}") for i in range(1, 9))
open(sys.argv[1], "w").write("scenarios:\n" + body)
PY
time_run() { local s e; s=$(date +%s.%N); target/release/seatrial run "$dir/eight.yaml" --junit "$dir/j.xml" -q --test-threads "$1" >/dev/null 2>&1; e=$(date +%s.%N); python3 -c "print($e - $s)"; }
cli_run() {
  local s e i; s=$(date +%s.%N)
  if [ "$1" = 1 ]; then for i in $(seq 1 8); do cli; done; else for i in $(seq 1 8); do cli & done; wait; fi
  e=$(date +%s.%N); python3 -c "print($e - $s)"
}
serial=(); parallel=(); cli_serial=(); cli_parallel=()
for _ in $(seq 1 "$RUNS"); do
  serial+=("$(time_run 1)"); parallel+=("$(time_run 8)")
  cli_serial+=("$(cli_run 1)"); cli_parallel+=("$(cli_run 8)")
done
python3 - "${serial[*]}" "${parallel[*]}" "${cli_serial[*]}" "${cli_parallel[*]}" <<'PY'
import statistics, sys
s, p, cs, cp = (statistics.median(map(float, a.split())) for a in sys.argv[1:5])
print(f"seatrial:          1 worker {s:.2f} s, 8 workers {p:.2f} s, ratio {p / s:.2f}")
print(f"docker CLI + curl: serial {cs:.2f} s, 8 jobs {cp:.2f} s, ratio {cp / cs:.2f}")
PY
