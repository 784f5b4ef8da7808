#!/usr/bin/env bash
# A throwaway Docker registry for the tests and benchmarks: Debian's docker-registry
# (distribution v2.8) on 127.0.0.1, with TLS (a self-signed certificate) and htpasswd auth.
#
#   eval "$(scripts/registry.sh)"     start one (or reuse the running one) and export
#                                     CONVERGE_TEST_REGISTRY=127.0.0.1:PORT
#                                     CONVERGE_TEST_REGISTRY_USER, CONVERGE_TEST_REGISTRY_PASSWORD_FILE
#                                     CONVERGE_TEST_REGISTRY_LOG (its request log)
#   scripts/registry.sh stop          stop it and delete its data
#
# The password is random, made at first start and kept (mode 0600) in the registry's folder;
# nothing real is ever stored there. The CA certificate goes to /etc/docker/certs.d/HOST:PORT/
# so the local dockerd verifies the registry (dockerd reads that folder on every pull). Run as
# root. Only the export lines go to stdout; progress goes to stderr.
#
# Environment:
#   CONVERGE_REGISTRY_DIR    the folder (default /tmp/converge-registry)
#   CONVERGE_REGISTRY_PORT   the port (default 55443)
set -euo pipefail

dir="${CONVERGE_REGISTRY_DIR:-/tmp/converge-registry}"
port="${CONVERGE_REGISTRY_PORT:-55443}"
address="127.0.0.1:$port"
user=converge-test

say() { printf 'registry: %s\n' "$*" >&2; }
die() { printf 'registry: ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker-registry >/dev/null || die "docker-registry is not installed (Debian package docker-registry: scripts/setup.sh installs it)"
command -v htpasswd >/dev/null || die "htpasswd is not installed (Debian package apache2-utils: scripts/setup.sh installs it)"

if [[ "${1:-}" == stop ]]; then
    [[ -f "$dir/pid" ]] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -rf "$dir" "/etc/docker/certs.d/$address"
    say "stopped"
    exit 0
fi

exports() {
    echo "export CONVERGE_TEST_REGISTRY=$address"
    echo "export CONVERGE_TEST_REGISTRY_USER=$user"
    echo "export CONVERGE_TEST_REGISTRY_PASSWORD_FILE=$dir/password"
    echo "export CONVERGE_TEST_REGISTRY_LOG=$dir/registry.log"
}

answers() {  # the registry's API root asks for credentials once it is up
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$dir/ca.crt" "https://$address/v2/" 2>/dev/null)" == 401 ]]
}

if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null && answers; then
    exports
    exit 0
fi

mkdir -p "$dir/data"
chmod 700 "$dir"
if [[ ! -f "$dir/password" ]]; then
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/password"
    chmod 600 "$dir/password"
fi
htpasswd -Bbn "$user" "$(cat "$dir/password")" >"$dir/htpasswd" 2>/dev/null
if [[ ! -f "$dir/ca.crt" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=converge test registry" \
        -addext "subjectAltName=IP:127.0.0.1" -keyout "$dir/registry.key" -out "$dir/ca.crt" 2>/dev/null \
        || die "openssl could not make the registry's certificate"
fi
mkdir -p "/etc/docker/certs.d/$address"
cp "$dir/ca.crt" "/etc/docker/certs.d/$address/ca.crt"

cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $address
  tls:
    certificate: $dir/ca.crt
    key: $dir/registry.key
auth:
  htpasswd:
    realm: converge-test
    path: $dir/htpasswd
EOF

say "starting docker-registry on $address (log: $dir/registry.log)"
setsid nohup docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 &
echo $! >"$dir/pid"
for _ in $(seq 1 40); do
    answers && { exports; exit 0; }
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { tail -n 20 "$dir/registry.log" >&2; die "docker-registry exited (log above)"; }
    sleep 0.25
done
tail -n 20 "$dir/registry.log" >&2
die "docker-registry did not answer on https://$address/v2/ within 10 s (log above)"
