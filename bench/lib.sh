# Shared by the benches: the docker CLI + curl way of running one lifecycle, as people script it in CI.
# Needs IMAGE, CMD and LABEL set by the caller.

wait_http() {
  local deadline=$((SECONDS + 30))
  until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$1/index.html"; do
    [ $SECONDS -lt $deadline ] || { echo "no HTTP answer on port $1 within 30s" >&2; exit 1; }
    sleep 0.025
  done
}

cli() {
  local id
  id=$(docker run -d --label "$LABEL" -p 127.0.0.1::8080 "$IMAGE" sh -c "$CMD")
  wait_http "$(docker port "$id" 8080/tcp | head -n1 | sed 's/.*://')"
  docker restart -t 1 "$id" >/dev/null
  wait_http "$(docker port "$id" 8080/tcp | head -n1 | sed 's/.*://')"
  docker rm -f -v "$id" >/dev/null
}

