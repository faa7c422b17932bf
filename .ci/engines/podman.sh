#!/usr/bin/env bash
# Rootful Podman 4.3 (Debian bookworm) serving its Docker-compatible API on a socket of its own
# (DESIGN.md section 4).
#   podman.sh up     install podman (apt-get, when missing), start `podman system service` with storage,
#                    run folders, networks and subnets of its own; copy the stand-in base images into it;
#                    print the environment to use it
#   podman.sh env    print that environment again (`eval "$(.ci/engines/podman.sh env)"`)
#   podman.sh down   stop it and remove everything `up` made: containers, conmon processes, mounts,
#                    bridges, netavark's firewall rules, cgroups, folders; then check that nothing is left
# The system Docker daemon is never touched; podman's own configuration in /etc/containers is not changed
# (ours is pointed at by CONTAINERS_CONF and CONTAINERS_STORAGE_CONF).
set -euo pipefail
cd "$(dirname "$0")/../.."
ENGINE_NAME=podman
. .ci/engines/lib.sh

DIR=$ENGINES_DIR/podman
RUN=/run/seatrial-pm
SOCKET=$RUN/podman.sock
# Podman's default network and the ones seatrial makes; the system daemon uses 172.17-31.x and 192.168.x.
SUBNET=10.214.0.0/24
POOL=10.214.128.0/17

environment() {
  echo "export DOCKER_HOST=unix://$SOCKET"
  echo "export CONTAINERS_CONF=$DIR/containers.conf"
  echo "export CONTAINERS_STORAGE_CONF=$DIR/storage.conf"
}

configure() {
  mkdir -p "$DIR/storage" "$DIR/networks" "$RUN/storage" "$RUN/tmp"
  cat >"$DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$RUN/storage"
EOF
  # default_ulimits: this VM's root lacks CAP_SYS_RESOURCE and its hard nofile limit is 20000, so the
  # defaults Podman asks for fail every container ("error setting rlimit type 7").
  cat >"$DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
cgroups = "enabled"
log_driver = "k8s-file"

[network]
network_backend = "netavark"
network_config_dir = "$DIR/networks"
default_subnet = "$SUBNET"
default_subnet_pools = [{ "base" = "$POOL", "size" = 24 }]

[engine]
# No systemd here: cgroups are managed by hand, events go to a file.
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$DIR/events.log"
tmp_dir = "$RUN/tmp"
runtime = "runc"
EOF
}

up() {
  [ -S "$SOCKET" ] && DOCKER_HOST=unix://$SOCKET timeout 5 docker version >/dev/null 2>&1 &&
    { say "already up"; environment; return 0; }
  local started=$SECONDS
  if ! command -v podman >/dev/null 2>&1 || [ ! -x /usr/lib/podman/netavark ]; then
    # netavark and aardvark-dns give networks that resolve container names (CNI without dnsname does not).
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman netavark aardvark-dns >/dev/null
    say "installed $(podman --version) in $((SECONDS - started))s"
  fi
  configure
  export CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf
  # Started in its own folder: Debian's conmon 2.1.6 writes a container's `oom` file into the service's
  # working directory (where Podman 4.3 never reads it), which must not be the checkout.
  # TMPDIR: buildah puts each RUN's bundle (and build contexts) there; in our folder, so that `down` can
  # find the RUN containers of a build nobody waits for any more (Podman does not cancel it).
  mkdir -p "$DIR/tmp"
  (cd "$DIR" && TMPDIR=$DIR/tmp exec nohup podman --cgroup-manager cgroupfs system service --time=0 "unix://$SOCKET" \
    >"$DIR/service.log" 2>&1 </dev/null) &
  echo $! >"$DIR/service.pid"
  export DOCKER_HOST=unix://$SOCKET
  wait_for "podman answering on $SOCKET (log: $DIR/service.log)" 60 docker version
  say "up in $((SECONDS - started))s: $(docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'), storage $(podman info --format '{{.Store.GraphDriverName}}')"
  copy_base_images ""
  say "ready in $((SECONDS - started))s"
  environment
}

down() {
  local started=$SECONDS
  export CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf
  if [ -f "$DIR/containers.conf" ]; then
    # Containers, pods and networks first, by podman itself, so that netavark removes its bridges and rules.
    timeout 120 podman rm -af -t 0 >/dev/null 2>&1 || true
    timeout 60 podman network prune -f >/dev/null 2>&1 || true
  fi
  stop_pid "$DIR/service.pid" 10
  # A build whose client went away runs on in buildah's RUN container (Podman 4.3 does not cancel it),
  # outside conmon and the service: found by its bundle in our TMPDIR, ended with runc by its id.
  runc list 2>/dev/null | awk -v d="$DIR/" 'index($4, d) == 1 { print $1 }' | while read -r id; do
    say "ending buildah's RUN container $id"
    runc kill "$id" KILL 2>/dev/null || true
    runc delete -f "$id" 2>/dev/null || true
  done
  # conmon outlives every exec by 300 s, and a killed service leaves its containers' conmon behind.
  kill_pids_mentioning "$RUN/"
  kill_pids_mentioning "$DIR/"
  if [ -f "$DIR/storage.conf" ]; then
    # Unmounts the storage's layers and removes what is left of it, with podman's own knowledge of it.
    timeout 120 podman system reset -f >/dev/null 2>&1 || true
  fi
  unmount_under "$RUN"
  unmount_under "$DIR"
  remove_netavark_leftovers
  remove_cgroup libpod_parent
  rm -rf "$RUN" "$DIR"
  rmdir --ignore-fail-on-non-empty "$ENGINES_DIR" 2>/dev/null || true
  check_nothing_left
  say "down in $((SECONDS - started))s, nothing left"
}

# Bridges with an address of our subnets, and netavark's firewall chains (nothing else on this machine
# runs netavark; the system daemon's chains are named DOCKER*).
remove_netavark_leftovers() {
  ip -o -4 addr show | awk '$4 ~ /^10\.214\./ { print $2 }' | sort -u |
    while read -r link; do ip link delete "$link" 2>/dev/null || true; done
  local table chain
  for table in filter nat; do
    iptables -t "$table" -S 2>/dev/null | grep -E '^-A .*NETAVARK' | while read -r rule; do
      # The rule as iptables printed it, quoted comments and all ("netavark firewall plugin rules").
      eval "iptables -t $table ${rule/-A/-D}" 2>/dev/null || true
    done || true
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /NETAVARK/ { print $2 }'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /NETAVARK/ { print $2 }'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

check_nothing_left() {
  local left
  left=$(
    leftovers "$RUN" "$DIR" 10.214. 10.214/16
    runc list 2>/dev/null | grep -qF " $DIR/" && echo "buildah RUN containers"
    iptables-save 2>/dev/null | grep -q NETAVARK && echo "netavark firewall rules"
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
