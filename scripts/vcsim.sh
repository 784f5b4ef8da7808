#!/usr/bin/env bash
# Builds vcsim-converge, govmomi's vCenter simulator (scripts/vcsim/main.go), from Debian's
# packages only: golang-go and golang-github-vmware-govmomi-dev, in GOPATH mode. The binary
# goes to .build-vcsim/vcsim-converge and is rebuilt only when main.go changes.
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'vcsim: %s\n' "$*" >&2; }

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
echo "$PWD/$out/vcsim-converge"
