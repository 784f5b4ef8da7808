#!/usr/bin/env bash
# Builds kube-apiserver from Debian's own source package `kubernetes` (with Debian's Go) and
# runs it on loopback with Debian's etcd-server, a static token file and a self-signed
# certificate. There is no controller-manager or kubelet: Pods never run and namespaces never
# finish deleting; the API server itself (discovery, list/watch, server-side apply, CRDs,
# Leases) is what the tests use.
#
# The binary is cached outside the clone, in $CONVERGE_CACHE (default /var/cache/converge),
# keyed by the source package version, so a machine builds it once (about 4 minutes on two
# cores). Progress goes to stderr.
#
#   scripts/kube-apiserver.sh           builds (or finds) the binary and prints its path
#   scripts/kube-apiserver.sh --start   also starts etcd and the API server on free loopback
#                                       ports and prints shell assignments:
#       CONVERGE_TEST_KUBE_URL=https://127.0.0.1:PORT
#       CONVERGE_TEST_KUBE_CA=…/ca.crt
#       CONVERGE_TEST_KUBE_TOKEN_FILE=…/token
#       CONVERGE_TEST_KUBECONFIG=…/kubeconfig
#       CONVERGE_TEST_KUBE_PIDS="ETCD_PID APISERVER_PID"
#   (`eval "$(scripts/kube-apiserver.sh --start)"`; `kill $CONVERGE_TEST_KUBE_PIDS` stops both).
#   A running instance started from this clone is reused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'kube-apiserver: %s\n' "$*" >&2; }

# Debian's version of the source package: upstream 1.20.2 (with security fixes).
version=1.20.5+really1.20.2-1.1+deb12u1
# Part of the cache key: change it whenever the build recipe below changes.
recipe=reflect2-1.0.2
cache="${CONVERGE_CACHE:-/var/cache/converge}/kube-apiserver-$version-$recipe"
binary="$cache/kube-apiserver"

install_missing() {
    local missing=() p
    for p in "$@"; do
        [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null \
        || { apt-get update -qq </dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null; }
}

build() (  # a subshell: its EXIT trap removes the work folder whatever happens
    install_missing golang-go rsync dpkg-dev make golang-github-modern-go-reflect2-dev
    work="$(mktemp -d "${TMPDIR:-/tmp}/converge-kube-build.XXXXXX")"
    chmod 755 "$work"  # apt downloads as _apt
    trap 'rm -rf "$work"' EXIT
    # A deb-src entry for the archive the machine already uses, in its own sources folder and
    # lists folder, so the system's apt setup stays untouched.
    mkdir -p "$work/sources.list.d" "$work/lists/partial"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$work/sources.list.d/debian-src.sources"
    apt_opts=(-o "Dir::Etc::SourceParts=$work/sources.list.d" -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::State::Lists=$work/lists")
    say "fetching the source package kubernetes $version"
    apt-get "${apt_opts[@]}" update -qq </dev/null >/dev/null
    (cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq "kubernetes=$version" </dev/null >/dev/null)
    (cd "$work" && dpkg-source -x ./kubernetes_*.dsc src >/dev/null)
    # The tree vendors reflect2 1.0.1, whose unsafe map iteration crashes under Go >= 1.18
    # (SIGSEGV in mapiterinit the first time json-iterator encodes a map: any
    # server-side apply response). Debian's golang-github-modern-go-reflect2-dev 1.0.2 is the
    # upstream fix, API-compatible.
    rm -rf "$work/src/vendor/github.com/modern-go/reflect2"
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$work/src/vendor/github.com/modern-go/reflect2"
    # GOPATH as debian/rules sets it: the tree reachable at .go/src/k8s.io/kubernetes.
    mkdir -p "$work/src/.go/src/k8s.io"
    ln -s "$work/src" "$work/src/.go/src/k8s.io/kubernetes"
    say "building (about 4 minutes on two cores)"
    start=$SECONDS
    (cd "$work/src/.go/src/k8s.io/kubernetes" && rm -rf _output &&
        HOME="$work/home" GOPATH="$work/src/.go" GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" CGO_ENABLED=0 \
            make WHAT=cmd/kube-apiserver >"$work/build.log" 2>&1) || { tail -40 "$work/build.log" >&2; say "ERROR: the build failed"; return 1; }
    mkdir -p "$cache"
    install -m 0755 "$(find "$work/src/_output" -type f -name kube-apiserver -perm -u+x | head -1)" "$binary.tmp"
    mv "$binary.tmp" "$binary"
    say "built in $((SECONDS - start)) s: $binary"
)

if [[ ! -x "$binary" ]]; then
    build
else
    say "cached: $binary"
fi
if [[ "${1:-}" != --start ]]; then
    echo "$binary"
    exit 0
fi

install_missing etcd-server openssl
state="$PWD/.build-kube"
mkdir -p "$state"

if [[ -f "$state/env" ]]; then
    # shellcheck disable=SC1091
    source "$state/env"
    if kill -0 $CONVERGE_TEST_KUBE_PIDS 2>/dev/null \
        && curl -fsS --cacert "$CONVERGE_TEST_KUBE_CA" "$CONVERGE_TEST_KUBE_URL/readyz" >/dev/null 2>&1; then
        say "reusing the running API server at $CONVERGE_TEST_KUBE_URL"
        cat "$state/env"
        exit 0
    fi
    kill $CONVERGE_TEST_KUBE_PIDS 2>/dev/null || true
fi
rm -rf "$state"
mkdir -p "$state"

# A loopback port nothing answers on (a connect to it fails).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}
etcd_client=$(free_port)
etcd_peer=$(free_port)
api_port=$(free_port)

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=converge-test-apiserver" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$state/server.key" -out "$state/ca.crt" >/dev/null 2>&1
openssl genrsa -out "$state/sa.key" 2048 >/dev/null 2>&1
token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "$token" > "$state/token"
# One administrator (system:masters); tests make narrower users through RBAC when they need one.
echo "$token,converge-admin,converge-admin,system:masters" > "$state/tokens.csv"

etcd --name converge-test --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "converge-test=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync >"$state/etcd.log" 2>&1 </dev/null &
etcd_pid=$!

"$binary" --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address 127.0.0.1 \
    --tls-cert-file "$state/ca.crt" --tls-private-key-file "$state/server.key" \
    --token-auth-file "$state/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$state/sa.key" \
    --service-account-signing-key-file "$state/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
    --enable-priority-and-fairness=false --disable-admission-plugins ServiceAccount \
    >"$state/apiserver.log" 2>&1 </dev/null &
api_pid=$!

url="https://127.0.0.1:$api_port"
for _ in $(seq 600); do
    if curl -fsS --cacert "$state/ca.crt" -H "Authorization: Bearer $token" "$url/readyz" >/dev/null 2>&1; then
        cat > "$state/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: converge-test
  cluster:
    server: $url
    certificate-authority: $state/ca.crt
users:
- name: converge-admin
  user:
    tokenFile: $state/token
contexts:
- name: converge-test
  context:
    cluster: converge-test
    user: converge-admin
current-context: converge-test
EOF
        cat > "$state/env" <<EOF
CONVERGE_TEST_KUBE_URL=$url
CONVERGE_TEST_KUBE_CA=$state/ca.crt
CONVERGE_TEST_KUBE_TOKEN_FILE=$state/token
CONVERGE_TEST_KUBECONFIG=$state/kubeconfig
CONVERGE_TEST_KUBE_PIDS="$etcd_pid $api_pid"
EOF
        say "running at $url (logs in $state; \`kill $etcd_pid $api_pid\` stops it)"
        cat "$state/env"
        exit 0
    fi
    kill -0 "$api_pid" 2>/dev/null || { tail -30 "$state/apiserver.log" >&2; kill "$etcd_pid" 2>/dev/null; say "ERROR: kube-apiserver exited"; exit 1; }
    kill -0 "$etcd_pid" 2>/dev/null || { tail -30 "$state/etcd.log" >&2; kill "$api_pid" 2>/dev/null; say "ERROR: etcd exited"; exit 1; }
    sleep 0.1
done
kill "$api_pid" "$etcd_pid" 2>/dev/null
tail -30 "$state/apiserver.log" >&2
say "ERROR: the API server did not become ready within 60 s"
exit 1
