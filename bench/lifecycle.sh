#!/usr/bin/env bash
# Times one container lifecycle (create, start, wait for HTTP, restart, wait for HTTP, remove) of a
# busybox httpd three ways, side by side in one run, and prints medians and ratios:
#   raw      Engine API calls with curl over the engine's socket
#   cli      a docker CLI + curl script, as people write them in CI
#   seatrial `seatrial run bench/lifecycle.yaml` (release build)
# Usage: bench/lifecycle.sh [RUNS]   (default 7; runs are interleaved so that drift hits all three alike)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-7}
IMAGE=${BUSYBOX_IMAGE:-seatrial/busybox}
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
API=http://localhost/v1.41
CMD='trap "exit 0" TERM; mkdir -p /www; echo ok > /www/index.html; httpd -f -p 8080 -h /www & wait'
LABEL=org.seatrial.run=bench-$$

cleanup() { docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f -v >/dev/null; }
trap cleanup EXIT
cargo build --release -q
SEATRIAL=target/release/seatrial

now() { date +%s.%N; }
# shellcheck source=bench/lib.sh
source bench/lib.sh
api() { curl -fs --unix-socket "$SOCK" -H 'Content-Type: application/json' "$@"; }
host_port_api() { api "$API/containers/$1/json" | grep -o '"HostPort":"[0-9][0-9]*"' | head -n1 | grep -o '[0-9][0-9]*'; }

raw() {
  local body id
  body=$(printf '{"Image":"%s","Cmd":["sh","-c","%s"],"Labels":{"org.seatrial.run":"bench-%s"},"ExposedPorts":{"8080/tcp":{}},"HostConfig":{"PortBindings":{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]}}}' "$IMAGE" "${CMD//\"/\\\"}" "$$")
  id=$(api -X POST -d "$body" "$API/containers/create" | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4)
  api -X POST "$API/containers/$id/start"
  wait_http "$(host_port_api "$id")"
  api -X POST "$API/containers/$id/restart?t=1"
  wait_http "$(host_port_api "$id")"
  api -X DELETE "$API/containers/$id?force=true&v=true"
}

seatrial() { "$SEATRIAL" run bench/lifecycle.yaml --junit /tmp/seatrial-bench-junit.xml -q >/dev/null 2>&1; }

declare -A times
for i in $(seq 1 "$RUNS"); do
  for way in raw cli seatrial; do
    start=$(now); "$way"; end=$(now)
    times[$way]+="$(python3 -c "print($end - $start)") "
  done
  echo "run $i/$RUNS done" >&2
done

python3 - "${times[raw]}" "${times[cli]}" "${times[seatrial]}" <<'PY'
import statistics, sys
raw, cli, st = (sorted(map(float, a.split())) for a in sys.argv[1:4])
m = {k: statistics.median(v) for k, v in (("raw Engine API", raw), ("docker CLI + curl", cli), ("seatrial", st))}
for k, v in m.items():
    print(f"{k:18} median {v:6.2f} s   (min {min(dict(zip(m, (raw, cli, st)))[k]):.2f}, n={len(raw)})")
print(f"seatrial / raw API: {m['seatrial'] / m['raw Engine API']:.2f}")
print(f"seatrial / CLI+curl: {m['seatrial'] / m['docker CLI + curl']:.2f}")
PY
