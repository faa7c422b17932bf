#!/usr/bin/env bash
# Grades the class in fixtures/class twice in one run: with seatrial, and with the bash + docker + curl
# script a teacher writes today (bench/grade-by-hand.sh). Prints both wall times, the ratio, and checks
# that both gradebooks equal the teacher's (fixtures/class/expected-grades.csv).
# Usage: bench/grade-class.sh [JOBS]        (JOBS: seatrial's --jobs; default: its own default)
# Both start cold: BuildKit's build cache is pruned before seatrial grades (SEATRIAL_KEEP_BUILD_CACHE=1
# keeps it), and the script removes its images, and with them the legacy builder's cache, as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=()
[ $# -ge 1 ] && jobs=(--jobs "$1")
out=bench/out/grade-class
rm -rf "$out" && mkdir -p "$out"
cargo build --release -q
fixtures/base-images/make-base-images.sh

if [ "${SEATRIAL_KEEP_BUILD_CACHE:-}" != 1 ]; then
  docker builder prune -af >/dev/null
fi
start=$(date +%s.%N)
target/release/seatrial grade fixtures/class/assignment.yaml fixtures/class/submissions "${jobs[@]}" \
  --out "$out/seatrial" 2>"$out/seatrial.log"
seatrial_s=$(echo "$(date +%s.%N) - $start" | bc)

start=$(date +%s.%N)
bench/grade-by-hand.sh -o "$out/by-hand.csv" 2>"$out/by-hand.log"
script_s=$(echo "$(date +%s.%N) - $start" | bc)

same=yes
diff -q "$out/seatrial/grades.csv" fixtures/class/expected-grades.csv >/dev/null || same="NO (seatrial differs)"
diff -q "$out/by-hand.csv" fixtures/class/expected-grades.csv >/dev/null || same="NO (the script differs)"
printf 'seatrial grade     %6.1f s\n' "$seatrial_s"
printf 'grade-by-hand.sh   %6.1f s\n' "$script_s"
printf 'speed-up           %6.2fx\n' "$(echo "$script_s / $seatrial_s" | bc -l)"
echo "scores equal the teacher's: $same"
