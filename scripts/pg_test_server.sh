#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for the vault store tests (and the store benchmark).
#   scripts/pg_test_server.sh start DIR   initdb a fresh cluster in DIR/data, start it listening only
#                                         on a unix socket in DIR/sock, write its URI to DIR/uri
#   scripts/pg_test_server.sh stop DIR    stop it (idempotent: a stopped or missing cluster is fine)
# Tolerates a stale cluster from an interrupted run: start stops whatever runs from DIR and begins
# again from an empty data directory. initdb refuses to run as root, so as root the cluster runs as
# the `postgres` OS user (or `nobody`), which owns DIR/data and DIR/sock.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"
data="$dir/data"
sock="$dir/sock"
log="$dir/logs/server.log"
port="${PORTCULLIS_TEST_PG_PORT:-54329}"  # only names the socket file; no TCP listener

pgbin="${PORTCULLIS_PG_BIN:-}"
if [ -z "$pgbin" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/initdb" ] && pgbin="$candidate"
  done
fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  echo "pg_test_server: no PostgreSQL server binaries (install the postgresql package: scripts/install.sh)" >&2
  exit 1
fi

run_as=()
owner="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
  run_as=(runuser -u "$owner" --)
fi

pg_ctl() { "${run_as[@]}" "$pgbin/pg_ctl" "$@"; }

stop_cluster() {
  if [ -f "$data/PG_VERSION" ]; then
    # -m immediate: the data is thrown away anyway; don't wait for clients.
    pg_ctl -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -f "$dir/uri"
}

case "$action" in
  start)
    stop_cluster
    rm -rf "$data" "$sock" "$dir/logs"
    mkdir -p "$data" "$sock" "$dir/logs"
    chown "$owner" "$data" "$sock" "$dir/logs"
    chmod 700 "$data" "$sock"
    # The user running the tests (root) reaches the socket; the server user must reach DIR.
    if [ ${#run_as[@]} -gt 0 ] && ! "${run_as[@]}" test -x "$dir"; then
      echo "pg_test_server: $owner cannot enter $dir; choose a build dir it can traverse" >&2
      exit 1
    fi
    "${run_as[@]}" "$pgbin/initdb" -D "$data" -U postgres --auth=trust --no-sync \
      -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
        echo "pg_test_server: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
    # Small and private: no TCP, few connections, little shared memory (5 helpers share a machine).
    pg_ctl -D "$data" -l "$log" -w -t 60 \
      -o "-c listen_addresses='' -c unix_socket_directories='$sock' -p $port \
          -c max_connections=60 -c shared_buffers=16MB -c fsync=on -c synchronous_commit=on" \
      start >/dev/null || { echo "pg_test_server: server did not start:" >&2; cat "$log" >&2; exit 1; }
    "${run_as[@]}" "$pgbin/createdb" -h "$sock" -p "$port" -U postgres portcullis_test
    echo "postgresql:///portcullis_test?host=$sock&port=$port&user=postgres" > "$dir/uri"
    echo "pg_test_server: running, URI in $dir/uri"
    ;;
  stop)
    stop_cluster
    rm -rf "$data" "$sock"
    echo "pg_test_server: stopped"
    ;;
  *) usage ;;
esac
