#!/usr/bin/env bash
# Grades a class three ways in one run, each cold (BuildKit's build cache pruned before each), and checks
# every gradebook against the teacher's:
#   seatrial   `seatrial grade` (its default jobs, or JOBS)
#   serial     bench/grade-by-hand.sh, the bash + docker + curl script a teacher writes, one submission
#              after another, building with BuildKit through the buildx CLI plugin as current Docker does
#              (bench/buildx.sh; this machine's own CLI would use the legacy builder)
#   4 at once  the same script run on four quarters of the class at the same time
# Prints the wall times and the ratios (issue 17's goal: seatrial at least 6x the serial script and 2.5x
# the script run 4 at a time), then where seatrial's time went (`--timings`, also in its log), and the load.
# Usage: bench/grade-class.sh [--class N] [JOBS]
#   --class N  grade a class of N submissions generated from fixtures/class (each submission copied under
#              a new name, its Dockerfile marked so that it is a folder of its own; the teacher's CSV
#              follows): the larger class of issue 17. Default: fixtures/class itself (10 submissions).
set -euo pipefail
cd "$(dirname "$0")/.."
size=
if [ "${1:-}" = --class ]; then size=$2; shift 2; fi
jobs=()
[ $# -ge 1 ] && jobs=(--jobs "$1")
out=$PWD/bench/out/grade-class
rm -rf "$out" && mkdir -p "$out"
cargo build --release -q
fixtures/base-images/make-base-images.sh
eval "$(bench/buildx.sh)"

class=$PWD/fixtures/class/submissions
expected=$PWD/fixtures/class/expected-grades.csv
if [ -n "$size" ]; then
  class=$out/class && mkdir -p "$class"
  head -n1 fixtures/class/expected-grades.csv >"$out/expected.csv"
  originals=(fixtures/class/submissions/*/)
  for ((i = 0; i < size; i++)); do
    source=${originals[i % ${#originals[@]}]%/}
    name=$(basename "$source")
    [ "$i" -lt "${#originals[@]}" ] || name=$name-copy$((i / ${#originals[@]}))
    cp -r "$source" "$class/$name"
    # A marked Dockerfile: the same instructions (BuildKit's cache serves both tools alike), another file.
    for dockerfile in "$class/$name"/[Dd]ockerfile; do
      [ -f "$dockerfile" ] && echo "# $name" >>"$dockerfile"
    done
    grep "^$(basename "$source")," fixtures/class/expected-grades.csv | sed "s/^[^,]*,/$name,/" >>"$out/expected.csv"
  done
  { head -n1 "$out/expected.csv"; tail -n +2 "$out/expected.csv" | sort; } >"$out/expected.sorted" &&
    mv "$out/expected.sorted" "$out/expected.csv"
  expected=$out/expected.csv
fi
count=$(find "$class" -mindepth 1 -maxdepth 1 -type d | wc -l)

cold() { docker builder prune -af >/dev/null; }
elapsed() { echo "$(date +%s.%N) - $1" | bc; }

cold
start=$(date +%s.%N)
target/release/seatrial grade fixtures/class/assignment.yaml "$class" "${jobs[@]}" --timings --out "$out/seatrial" \
  2>"$out/seatrial.log"
seatrial_s=$(elapsed "$start")

cold
start=$(date +%s.%N)
bench/grade-by-hand.sh -o "$out/serial.csv" "$class" 2>"$out/serial.log"
serial_s=$(elapsed "$start")
# In the teacher's row order: the script's glob puts `01-alice-copy1/` before `01-alice/` ('-' < '/').
{ head -n1 "$out/serial.csv"; tail -n +2 "$out/serial.csv" | sort; } >"$out/serial.sorted" &&
  mv "$out/serial.sorted" "$out/serial.csv"

# Four quarters of the class, each graded by its own run of the script, all at once.
cold
for q in 0 1 2 3; do mkdir -p "$out/quarter$q"; done
i=0
for submission in "$class"/*/; do
  cp -r "${submission%/}" "$out/quarter$((i % 4))/"
  i=$((i + 1))
done
start=$(date +%s.%N)
for q in 0 1 2 3; do
  bench/grade-by-hand.sh -o "$out/quarter$q.csv" "$out/quarter$q" 2>"$out/quarter$q.log" &
done
wait
parallel_s=$(elapsed "$start")
{ head -n1 "$out/quarter0.csv"; for q in 0 1 2 3; do tail -n +2 "$out/quarter$q.csv"; done | sort; } >"$out/parallel.csv"

same=yes
diff -q "$out/seatrial/grades.csv" "$expected" >/dev/null || same="NO (seatrial differs)"
diff -q "$out/serial.csv" "$expected" >/dev/null || same="NO (the serial script differs)"
diff -q "$out/parallel.csv" "$expected" >/dev/null || same="NO (the script 4 at a time differs)"
printf 'class of %d submissions, every tool cold, the script building with BuildKit (buildx)\n' "$count"
printf 'seatrial grade            %7.1f s\n' "$seatrial_s"
printf 'script, serial            %7.1f s   seatrial %5.2fx faster (goal 6x)\n' "$serial_s" \
  "$(echo "$serial_s / $seatrial_s" | bc -l)"
printf 'script, 4 at a time       %7.1f s   seatrial %5.2fx faster (goal 2.5x)\n' "$parallel_s" \
  "$(echo "$parallel_s / $seatrial_s" | bc -l)"
echo "scores equal the teacher's: $same"
sed -n '/^where the time went/,$p' "$out/seatrial.log"
uptime
