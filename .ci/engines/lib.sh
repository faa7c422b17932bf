# Shared by the engine scripts beside it (sourced, not run): fetching Debian packages into a folder of our
# own, the FORWARD rules a bridge of our own needs, stopping what we started by its pid, and the checks
# that teardown left nothing behind. Nothing here touches the system Docker daemon or its files.

# Where each engine keeps its state while it is up (removed by `down`).
ENGINES_DIR=${SEATRIAL_ENGINES_DIR:-/var/tmp/seatrial-engines}
# Downloaded .debs are kept here between runs only when this is set (CI downloads afresh: ~70 MB, 1-3 s).
ENGINES_CACHE=${SEATRIAL_ENGINES_CACHE:-}

# The Debian mirror this machine's apt already uses (its deb822 `.sources` or one-line `sources.list`
# entry for the main archive, not the security one), so that the scripts reach what apt reaches here.
this_machines_mirror() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      /Suites:[^\n]*(bookworm|trixie|stable)([ \n]|$)/ && !/security/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, u, " "); print u[2]; exit } }' "$file"
  done | head -n 1
  local lists=()
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f "$file" ] && lists+=("$file"); done
  [ ${#lists[@]} -eq 0 ] ||
    awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      "${lists[@]}" | head -n 1
  return 0
}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(this_machines_mirror | head -n 1)}

say() { printf '%s: %s\n' "${ENGINE_NAME:-engines}" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# fetch_debs DEST SUITE PACKAGE...: downloads the packages of SUITE with apt-get, using a sources list,
# package lists and cache of our own, so that the machine's apt configuration and state stay as they are.
fetch_debs() {
  local dest=$1 suite=$2; shift 2
  [ -n "$DEBIAN_MIRROR" ] || die "no Debian mirror in apt's sources here; set DEBIAN_MIRROR"
  local apt=$dest/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dest/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR $suite main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root -qq)
  apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 || { cat "$apt/update.log" >&2; die "apt-get update of $suite failed"; }
  (cd "$dest/debs" && apt-get "${opts[@]}" download "$@" >"$apt/download.log" 2>&1) ||
    { cat "$apt/download.log" >&2; die "apt-get download $* from $suite failed"; }
  rm -rf "$apt"
}

# debs_for NAME SUITE PACKAGE...: the folder holding the packages' .debs, fetched when not cached.
debs_for() {
  local name=$1 suite=$2; shift 2
  local where=${ENGINES_CACHE:+$ENGINES_CACHE/$name}
  where=${where:-$ENGINES_DIR/$name/download}
  if [ ! -f "$where/complete" ]; then
    rm -rf "$where"
    fetch_debs "$where" "$suite" "$@"
    touch "$where/complete"
  fi
  echo "$where/debs"
}

# forward_rules add|del SUBNET...: lets containers on our bridge talk to each other. The host's FORWARD
# policy is DROP and br_netfilter is on, so bridged traffic needs these ACCEPTs; the system daemon's own
# rules are for docker0 only. Each rule carries a comment that names it ours, so `del` finds exactly it.
forward_rules() {
  local action=$1; shift
  local subnet
  for subnet in "$@"; do
    for direction in -s -d; do
      local rule=(FORWARD "$direction" "$subnet" -m comment --comment "seatrial-$ENGINE_NAME" -j ACCEPT)
      if [ "$action" = add ]; then
        iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}"
      else
        while iptables -C "${rule[@]}" 2>/dev/null; do iptables -D "${rule[@]}"; done
      fi
    done
  done
}

# stop_pid PIDFILE SECONDS: SIGTERM to the pid in the file, SIGKILL after SECONDS; only that process.
stop_pid() {
  local file=$1 grace=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { say "pid $pid ignored SIGTERM for ${grace}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$file"
}

# leftovers RUN_DIR STATE_DIR ADDRESS_PREFIX SUBNET: what any engine's teardown may leave, one a line:
# processes naming its run folder, a link with an address of its subnet, mounts below its folders, its
# state folder. Each script adds what only its engine leaves.
leftovers() {
  local run=$1 dir=$2 prefix=$3 subnet=$4
  [ -n "$(pids_mentioning "$run/")" ] && echo "processes"
  ip -o -4 addr show | grep -qF " $prefix" && echo "a link with an address of $subnet"
  grep -qE " ($run|$dir)[ /]" /proc/self/mountinfo && echo "mounts"
  [ -e "$dir" ] && echo "$dir"
  return 0
}

# pids_mentioning TEXT: processes whose command line contains TEXT (our own state folders' paths, which
# nothing but what we started names), so that leftovers (shims, conmon) are ended by id, never by name.
pids_mentioning() {
  local text=$1 pid
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [ "$pid" = $$ ] && continue
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$text" && echo "$pid"
  done
  return 0
}

kill_pids_mentioning() {
  local text=$1 pids
  pids=$(pids_mentioning "$text")
  [ -z "$pids" ] && return 0
  say "ending leftover processes of $text: $(echo $pids)"
  kill -TERM $pids 2>/dev/null || true
  sleep 1
  pids=$(pids_mentioning "$text")
  [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
  return 0
}

# unmount_under DIR: every mount below DIR (overlay layers, shm, netns), deepest first.
unmount_under() {
  local dir=$1
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
}

# remove_cgroup NAME: the cgroup folder an engine made for its containers, in every v1 controller (or v2).
remove_cgroup() {
  local name=$1 dir
  for dir in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
    [ -d "$dir" ] || continue
    # Children first: rmdir removes an empty cgroup; a cgroup with processes stays (and is reported).
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$dir" ] && say "warning: cgroup $dir still has processes"
  done
  return 0
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not happen within ${seconds}s"
}

# Moves the stand-in base images from the engine at $1 (a DOCKER_HOST, "" for the default) into the
# engine that DOCKER_HOST now names: `docker save | docker load` takes seconds where debootstrap takes a
# minute. An image the source lacks is made by the project's script, against the target engine.
copy_base_images() {
  local from=$1 image missing=()
  for image in seatrial/busybox:latest python:3.11-slim postgres:15; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    if DOCKER_HOST=$from docker image inspect "$image" >/dev/null 2>&1; then
      DOCKER_HOST=$from docker save "$image" | docker load -q >/dev/null || die "could not copy $image"
      say "copied $image"
    else
      missing+=("$image")
    fi
  done
  [ ${#missing[@]} -eq 0 ] || fixtures/base-images/make-base-images.sh
}
