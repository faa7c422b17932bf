#!/usr/bin/env bash
# Grades a class of Docker submissions the way a teacher scripts it today (docker CLI + curl, one
# submission after another) against the rubric of fixtures/class/assignment.yaml, and prints the
# gradebook as CSV: the peer seatrial's grading is compared with, for results and for wall time.
# Usage: bench/grade-by-hand.sh [-o FILE] [PARENT]   (PARENT default: fixtures/class/submissions)
# Progress and timings go to stderr. Everything it makes is labelled org.seatrial.bench=grade-by-hand
# and removed after each submission and on exit.
set -euo pipefail

out=
while getopts o: opt; do
  case $opt in
    o) out=$OPTARG ;;
    *) echo "usage: $0 [-o FILE] [PARENT]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
parent=${1:-$(dirname "$0")/../fixtures/class/submissions}
[[ -d $parent ]] || { echo "$0: no folder $parent" >&2; exit 2; }
if [[ -n $out ]]; then exec 3>"$out"; else exec 3>&1; fi

RUN=$(date +%s)-$$
LABEL=org.seatrial.bench=grade-by-hand
RUN_LABEL=org.seatrial.bench.run=$RUN   # so that cleanup never touches another run's resources
PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.11-slim}
READY_TIMEOUT=30
tmp=$(mktemp -d)

# A failed legacy build leaves the image of its last good step behind, untagged and without our label
# (labels only reach the final image); remove it, and with it its untagged parents, but never a tagged
# image such as the base.
drop_build_leftovers() {
  local id
  [[ -f $tmp/build.log ]] || return 0
  id=$(grep -Eo '^ ---> [0-9a-f]{12}$' "$tmp/build.log" | tail -n1 | cut -c7-) || true
  if [[ -n $id && $(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null) == 0 ]]; then
    docker rmi "$id" >/dev/null 2>&1 || true
  fi
  rm -f "$tmp/build.log"
}

cleanup() {
  set +e
  drop_build_leftovers
  docker ps -aq --filter "label=$RUN_LABEL" | xargs -r docker rm -f -v >/dev/null 2>&1
  # A removal the interrupted CLI had started goes on in the daemon and keeps the volume busy a moment.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    docker volume ls -q --filter "label=$RUN_LABEL" | xargs -r docker volume rm >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker images -q --filter "label=$RUN_LABEL" | sort -u | xargs -r docker rmi -f >/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The published host port changes on every start, so it is re-read while waiting.
wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    port=$(docker port "$ctr" 8000/tcp 2>/dev/null | head -n1 | sed 's/.*://') || port=
    if [[ -n $port ]] && curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# req METHOD PATH [JSON]: sets code (000 when nothing answered) and body.
req() {
  local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 10 -X "$1" "http://127.0.0.1:${port:-1}$2")
  [[ $# -lt 3 ]] || args+=(-H 'Content-Type: application/json' -d "$3")
  rm -f "$tmp/body"
  code=$(curl "${args[@]}") || code=000
  body=$(cat "$tmp/body" 2>/dev/null) || body=
}

start_web() {
  docker run -d --name "$ctr" --label "$LABEL" --label "$RUN_LABEL" \
    -p 127.0.0.1::8000 -v "$vol:/data" "$image" >/dev/null || true
}

grade() {
  local dir=$1 id started=$SECONDS
  id=$(basename "$dir")
  local name   # image references allow only lowercase ASCII
  name=$(LC_ALL=C tr '[:upper:]' '[:lower:]' <<<"$id" | LC_ALL=C tr -c 'a-z0-9_.\n-' '-')
  image=grade-by-hand/$name:$RUN ctr=gbh-$RUN-$name vol=gbh-$RUN-$name port=
  local build=0 answers=0 creates=0 restart=0 recreate=0 notfound=0 stop=0

  # In its own session, Ctrl-C does not reach the build: killed, the CLI leaves the daemon finishing the
  # build alone, and its images appear after the cleanup has run. Bash runs the trap once it returns.
  if setsid -w docker build --force-rm --label "$LABEL" --label "$RUN_LABEL" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" \
    -t "$image" "$dir" >"$tmp/build.log" 2>&1; then
    rm -f "$tmp/build.log"
    build=2
    docker volume create --label "$LABEL" --label "$RUN_LABEL" "$vol" >/dev/null
    start_web
    wait_ready && answers=2

    req POST /notes '{"text": "hello"}'
    [[ $code == 201 ]] && creates=1

    docker restart "$ctr" >/dev/null 2>&1 || true
    wait_ready || true
    req GET /notes
    [[ $code == 200 && $body == *hello* ]] && restart=1

    docker rm -f -v "$ctr" >/dev/null
    start_web
    wait_ready || true
    req GET /notes
    [[ $code == 200 && $body == *hello* ]] && recreate=2

    req GET /no-such-page
    [[ $code == 404 ]] && notfound=1

    # A container that has already exited has nothing to stop cleanly: no point.
    if [[ $(docker inspect -f '{{.State.Running}}' "$ctr" 2>/dev/null) == true ]]; then
      local t0=$EPOCHREALTIME
      docker stop -t 10 "$ctr" >/dev/null || true
      local took
      took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
      awk -v t="$took" 'BEGIN { exit !(t < 5) }' && stop=1
      echo "  $id: docker stop took ${took}s" >&2
    fi
  else
    echo "  $id: build failed: $(grep -v '^DEPRECATED\|^ \+\(Install\|https\)' "$tmp/build.log" | tail -n1)" >&2
    drop_build_leftovers
  fi

  docker rm -f -v "$ctr" >/dev/null 2>&1 || true
  docker volume rm "$vol" >/dev/null 2>&1 || true
  docker rmi "$image" >/dev/null 2>&1 || true

  local score=$((build + answers + creates + restart + recreate + notfound + stop))
  echo "$id,$score,10,$build,$answers,$creates,$restart,$recreate,$notfound,$stop" >&3
  echo "$id: $score/10 in $((SECONDS - started))s" >&2
}

echo "submission,score,max,build,answers on port 8000,creates a note,notes survive a restart,notes survive a re-creation,unknown paths give 404,stops within 5 s" >&3
for dir in "$parent"/*/; do
  grade "${dir%/}"
done
echo "graded in ${SECONDS}s" >&2
