#!/usr/bin/env bash
# Runs the engine-facing suite against another engine, set up from scratch beside the system daemon and
# torn down afterwards whatever happens:
#   .ci/engines/suite.sh docker26|podman [TEST-BINARY...]   (default: scenarios engine)
# `seatrial doctor` first (it must say the engine can run seatrial), then the demo scenarios and the
# failing set with its snapshots (`cargo test --test scenarios --test engine`), with DOCKER_HOST naming
# the engine for seatrial and for the docker CLI the tests use. Prints how long each part took.
set -euo pipefail
cd "$(dirname "$0")/../.."

engine=${1:?usage: $0 docker26|podman [TEST-BINARY...]}
shift
binaries=("$@")
[ $# -eq 0 ] && binaries=(scenarios engine)
script=.ci/engines/$engine.sh
[ -x "$script" ] || { echo "no such engine script: $script" >&2; exit 2; }

times=()
started=$SECONDS
phase_started=$SECONDS
phase() { times+=("$1 $((SECONDS - phase_started))s"); phase_started=$SECONDS; }
report() {
  local status=$?
  phase_started=$SECONDS
  "$script" down || status=1
  phase "down"
  echo "engines/$engine: ${times[*]}; total $((SECONDS - started))s" >&2
  exit "$status"
}
trap report EXIT

# Captured first, so that a failed `up` stops the suite here (an `eval "$(...)"` would not), and checked,
# so that the tests can never run against the system daemon by mistake.
environment=$("$script" up)
eval "$environment"
[ -n "${DOCKER_HOST:-}" ] || { echo "engines/$engine: up gave no DOCKER_HOST" >&2; exit 1; }
phase "up"

cargo build --locked -q --bin seatrial
target/debug/seatrial doctor
phase "doctor"

args=()
for binary in "${binaries[@]}"; do args+=(--test "$binary"); done
# Scenarios that use what an engine does not do (README's compatibility matrix, measured) are left out on
# it, by name: libtest counts them as filtered out, never as passed.
skips=()
if [ "$engine" = docker26 ]; then
  skips=(
    # Docker 26 here runs with --iptables=false and no masquerading (beside the system daemon): its builds
    # reach no package index, and django-compose's web installs psycopg2-binary from PyPI.
    --skip "django-compose::"
  )
fi
if [ "$engine" = podman ]; then
  skips=(
    # Podman 4.3's archive API follows a symlink (`/bin/sh`) and gives the file it leads to.
    --skip "static-site::the image and its files from outside, a frozen server and a cut-off one"
    # Podman 4.3's exec attach does not carry a relayed request (`from:`) both ways.
    --skip "django-forms::a client on the network reaches a port that is not published"
    # Podman 4.3 runs healthchecks through systemd timers, and its service here runs without systemd:
    # no healthcheck ever runs, so a stack that waits for `service_healthy` never comes up (seatrial says
    # so after 180 s). Compose stacks are tested on Docker 20.10 and 26 (v1 and v2).
    --skip "compose-basics::"
    --skip "django-compose::"
  )
fi
cargo test --locked "${args[@]}" -- "${skips[@]}"
phase "tests"
