#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from Debian's packages (postgresql).
#
#   eval "$(scripts/postgres.sh)"     start one (or reuse the running one) and export
#                                     CONVERGE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/converge_test
#   scripts/postgres.sh stop          stop it and delete its data
#   scripts/postgres.sh status        exit 0 and print the URL when one is running
#
# The server listens on 127.0.0.1 only (port 55432, or the next free one), trusts local
# connections (no password: it holds nothing but test data), and keeps its data, socket, log
# and port under one folder (default /tmp/converge-postgres). It runs as the `postgres` user
# when started by root (PostgreSQL refuses to run as root). Its settings are Debian's defaults
# (fsync on), so timings measured against it are honest.
# Only the export line goes to stdout; progress goes to stderr.
#
# Environment:
#   CONVERGE_POSTGRES_DIR    the folder (default /tmp/converge-postgres)
#   CONVERGE_POSTGRES_PORT   the first port to try (default 55432)
set -euo pipefail

dir="${CONVERGE_POSTGRES_DIR:-/tmp/converge-postgres}"
first_port="${CONVERGE_POSTGRES_PORT:-55432}"
data="$dir/data"
database=converge_test

say() { printf 'postgres: %s\n' "$*" >&2; }
die() { printf 'postgres: ERROR: %s\n' "$*" >&2; exit 1; }

# Debian installs the server under /usr/lib/postgresql/VERSION/bin, off PATH: take the newest.
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[[ -n "$bindir" && -x "$bindir/pg_ctl" ]] \
    || die "no PostgreSQL server found under /usr/lib/postgresql (install Debian's postgresql package: scripts/setup.sh does)"

# Run a server binary as the postgres user when we are root; as ourselves otherwise.
if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "user postgres is missing (it comes with Debian's postgresql package)"
    as_pg() { runuser -u postgres -- "$@"; }
    owner=postgres
else
    as_pg() { "$@"; }
    owner="$(id -un)"
fi

url_for() { echo "postgres://postgres@127.0.0.1:$1/$database"; }

running_port() {  # prints the port of a running server in $dir, or fails
    [[ -f "$dir/port" && -f "$data/postmaster.pid" ]] || return 1
    as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 1
    cat "$dir/port"
}

port_in_use() {
    # Something accepting on the port, or ss listing it (covers other addresses too).
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    command -v ss >/dev/null && [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]] && return 0
    return 1
}

stop_server() {
    if [[ -f "$data/postmaster.pid" ]]; then
        as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

start_server() {
    local port
    if port="$(running_port)"; then
        say "reusing the server on 127.0.0.1:$port ($dir)"
        echo "export CONVERGE_TEST_POSTGRES_URL=$(url_for "$port")"
        return
    fi
    # Leftovers of a server that is gone (e.g. after a reboot): start afresh.
    stop_server
    port="$first_port"
    while port_in_use "$port"; do
        port=$((port + 1))
        ((port < first_port + 100)) || die "no free port in $first_port..$((first_port + 99))"
    done

    mkdir -p "$dir"
    chown "$owner" "$dir"
    chmod 700 "$dir"
    say "initdb into $data"
    as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$data/postgresql.conf" <<EOF

# scripts/postgres.sh: loopback only, socket in our own folder, room for parallel tests.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
EOF
    echo "$port" >"$dir/port"
    say "starting on 127.0.0.1:$port (log: $dir/server.log)"
    # 9>&-: the server must not inherit the lock below, or it would hold it for its lifetime.
    as_pg "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null 9>&- \
        || { tail -n 30 "$dir/server.log" >&2 || true; die "the server did not start"; }
    as_pg "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $database" >&2 || die "cannot create database $database"
    say "ready"
    echo "export CONVERGE_TEST_POSTGRES_URL=$(url_for "$port")"
}

# One invocation at a time: two test runs starting together share one server.
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9

case "${1:-start}" in
    start) start_server ;;
    stop)
        stop_server
        say "stopped; $dir removed"
        ;;
    status)
        port="$(running_port)" || { say "not running"; exit 1; }
        echo "export CONVERGE_TEST_POSTGRES_URL=$(url_for "$port")"
        ;;
    *) die "usage: scripts/postgres.sh [start|stop|status]" ;;
esac
