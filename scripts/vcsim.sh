#!/usr/bin/env bash
# Builds vcsim-converge, govmomi's vCenter simulator (scripts/vcsim/main.go), from Debian's
# packages only: golang-go and golang-github-vmware-govmomi-dev, in GOPATH mode. The binary
# goes to .build-vcsim/vcsim-converge and is rebuilt only when main.go changes.
# Prints the binary's path on stdout; progress goes to stderr.
#
# `scripts/vcsim.sh --start HOST:PORT` also starts the simulator there in the background, waits
# until it answers, and prints its pid instead (`kill PID` stops it; its log is
# .build-vcsim/vcsim-PORT.log). Its inventory lives in memory: each start is a fresh one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'vcsim: %s\n' "$*" >&2; }

listen=""
if [[ "${1:-}" == --start ]]; then
    listen="${2:?usage: scripts/vcsim.sh [--start HOST:PORT]}"
fi

missing=()
for p in golang-go golang-github-vmware-govmomi-dev; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null \
        || { apt-get update -qq </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null; }
fi

out=.build-vcsim
recipe=$(sha256sum scripts/vcsim/main.go | cut -c1-16)
if [[ -x "$out/vcsim-converge" && "$(cat "$out/recipe" 2>/dev/null)" == "$recipe" ]]; then
    say "up to date ($recipe)"
else
    start=$SECONDS
    mkdir -p "$out"
    (cd scripts/vcsim && GOCACHE="$PWD/../../$out/gocache" GO111MODULE=off GOPATH=/usr/share/gocode CGO_ENABLED=0 \
        go build -o "../../$out/vcsim-converge" .)
    echo "$recipe" > "$out/recipe"
    say "built in $((SECONDS - start)) s"
fi
if [[ -z "$listen" ]]; then
    echo "$PWD/$out/vcsim-converge"
    exit 0
fi

log="$out/vcsim-${listen##*:}.log"
"$out/vcsim-converge" -listen "$listen" </dev/null >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    if grep -q VCSIM_READY "$log"; then
        say "running on https://$listen/sdk (pid $pid; \`kill $pid\` stops it)"
        echo "$pid"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; say "ERROR: the simulator did not start (is $listen free?)"; exit 1; }
    sleep 0.1
done
kill "$pid" 2>/dev/null
cat "$log" >&2
say "ERROR: the simulator did not report VCSIM_READY within 10 s"
exit 1
