#!/usr/bin/env bash
# Gives the docker CLI the buildx plugin from Debian trixie's `docker-buildx`, in a DOCKER_CONFIG of the
# bench's own, so that `docker build` builds with BuildKit as it does by default on current Docker (this
# machine's CLI has no buildx, and falls back to the legacy builder). buildx 0.13 works against the 20.10
# daemon (DESIGN.md section 4). Nothing of the machine's docker configuration changes.
# Usage: eval "$(bench/buildx.sh)"      (exports DOCKER_CONFIG and DOCKER_BUILDKIT=1)
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE_NAME=buildx
SEATRIAL_ENGINES_DIR=$PWD/bench/out/engines
. .ci/engines/lib.sh
dir=$PWD/bench/out/buildx
plugin=$dir/config/cli-plugins/docker-buildx
if [ ! -x "$plugin" ]; then
  debs=$(debs_for buildx trixie docker-buildx)
  rm -rf "$dir/root" && mkdir -p "$dir/root" "$dir/config/cli-plugins"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
  ln -sf "$dir/root/usr/libexec/docker/cli-plugins/docker-buildx" "$plugin"
fi
DOCKER_CONFIG=$dir/config docker buildx version >&2
echo "export DOCKER_CONFIG=$dir/config DOCKER_BUILDKIT=1"
