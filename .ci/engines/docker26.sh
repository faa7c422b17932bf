#!/usr/bin/env bash
# Docker 26 beside the system daemon, from Debian trixie's packages (DESIGN.md section 4).
#   docker26.sh up     fetch and unpack docker.io, containerd, tini and the compose v2 plugin; start dockerd
#                      on a socket, data-root, exec-root, bridge, address pool and cgroup parent of its own;
#                      copy the stand-in base images into it; print the environment to use it
#   docker26.sh env    print that environment again (`eval "$(.ci/engines/docker26.sh env)"`)
#   docker26.sh down   stop it and remove everything `up` made: processes, mounts, bridge, FORWARD rules,
#                      cgroups, folders; then check that nothing is left
# The system daemon (its socket, /etc/docker, /var/lib/docker, docker0, its iptables chains) is never touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENGINE_NAME=docker26
. .ci/engines/lib.sh

DIR=$ENGINES_DIR/docker26
# Unix socket paths are limited to 108 bytes: containerd's live below the exec-root, so it is short.
EXEC_ROOT=/run/seatrial-d26
SOCKET=$EXEC_ROOT/docker.sock
BRIDGE=seatrial-d26
BRIDGE_CIDR=10.213.0.1/24
# The system daemon uses 172.17-31.x and 192.168.x; this pool overlaps none of them.
POOL=10.213.128.0/17
CGROUP_PARENT=seatrial-docker26
PACKAGES=(docker.io containerd tini docker-compose)

environment() {
  echo "export DOCKER_HOST=unix://$SOCKET"
  # The compose v2 plugin of the same release, found by the docker CLI as `docker compose`.
  echo "export DOCKER_CONFIG=$DIR/config"
}

up() {
  [ -S "$SOCKET" ] && DOCKER_HOST=unix://$SOCKET timeout 5 docker version >/dev/null 2>&1 &&
    { say "already up"; environment; return 0; }
  local started=$SECONDS debs
  mkdir -p "$DIR" "$EXEC_ROOT"
  debs=$(debs_for docker26 trixie "${PACKAGES[@]}")
  rm -rf "$DIR/root" && mkdir -p "$DIR/root"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$DIR/root"; done
  local bin=$DIR/root/usr/bin sbin=$DIR/root/usr/sbin
  # dockerd finds docker-init and containerd on PATH; trixie's runc needs glibc 2.38, so the system's
  # runc 1.1.5 (/usr/sbin) serves, found after ours.
  ln -sf tini-static "$bin/docker-init"
  mkdir -p "$DIR/config/cli-plugins"
  ln -sf "$DIR/root/usr/libexec/docker/cli-plugins/docker-compose" "$DIR/config/cli-plugins/docker-compose"
  say "unpacked $(du -sh "$DIR/root" | cut -f1) in $((SECONDS - started))s: $("$sbin/dockerd" --version)"

  ip link show "$BRIDGE" >/dev/null 2>&1 || {
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  }
  forward_rules add "$BRIDGE_CIDR" "$POOL"
  # A config file of its own: without one dockerd reads /etc/docker/daemon.json (the system daemon's).
  cat >"$DIR/daemon.json" <<EOF
{
  "default-address-pools": [{ "base": "$POOL", "size": 24 }],
  "mtu": 1400,
  "log-driver": "json-file"
}
EOF
  PATH=$bin:$sbin:$PATH nohup "$sbin/dockerd" \
    --config-file "$DIR/daemon.json" \
    --host "unix://$SOCKET" \
    --data-root "$DIR/data" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$DIR/dockerd.pid" \
    --bridge "$BRIDGE" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --cgroup-parent "$CGROUP_PARENT" \
    --userland-proxy-path "$sbin/docker-proxy" \
    >"$DIR/dockerd.log" 2>&1 </dev/null &
  export DOCKER_HOST=unix://$SOCKET
  wait_for "dockerd 26 answering on $SOCKET (log: $DIR/dockerd.log)" 60 docker version
  say "up in $((SECONDS - started))s: $(docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'), storage $(docker info --format '{{.Driver}}')"
  copy_base_images ""
  say "ready in $((SECONDS - started))s"
  environment
}

down() {
  local started=$SECONDS
  if [ -f "$DIR/dockerd.pid" ]; then
    # Containers first, through the engine, so that their shims and mounts go the ordinary way.
    DOCKER_HOST=unix://$SOCKET timeout 60 docker ps -aq 2>/dev/null | xargs -r env DOCKER_HOST="unix://$SOCKET" docker rm -f >/dev/null 2>&1 || true
    stop_pid "$DIR/dockerd.pid" 30
  fi
  # Whatever survived a dockerd that was killed: its containerd and shims name our exec-root or data-root.
  kill_pids_mentioning "$EXEC_ROOT/"
  kill_pids_mentioning "$DIR/"
  unmount_under "$EXEC_ROOT"
  unmount_under "$DIR"
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  # Bridges of the networks the engine made (br-<id>) carry addresses from our pool.
  ip -o -4 addr show | awk '$4 ~ /^10\.213\./ { print $2 }' | sort -u | while read -r link; do ip link delete "$link" 2>/dev/null || true; done
  forward_rules del "$BRIDGE_CIDR" "$POOL"
  remove_cgroup "$CGROUP_PARENT"
  rm -rf "$EXEC_ROOT" "$DIR"
  rmdir --ignore-fail-on-non-empty "$ENGINES_DIR" 2>/dev/null || true
  check_nothing_left
  say "down in $((SECONDS - started))s, nothing left"
}

check_nothing_left() {
  local left
  left=$(
    leftovers "$EXEC_ROOT" "$DIR" 10.213. 10.213/16
    ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE"
    iptables -S FORWARD | grep -q "seatrial-$ENGINE_NAME" && echo "FORWARD rules"
    true
  )
  [ -z "$left" ] || die "teardown left: $(paste -sd ' ' <<<"$left")"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) environment ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
