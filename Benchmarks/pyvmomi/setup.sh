#!/usr/bin/env bash
# Creates the pyVmomi benchmark venv and installs the pinned pyVmomi into it. Idempotent.
#   PYVMOMI_VENV   venv path (default: <repo>/.build-bench/pyvmomi-venv)
#   PYTHON         interpreter to create it with (default: python3)
# Prints the venv's python path on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PIN="pyvmomi==9.1.1.0"
venv="${PYVMOMI_VENV:-$PWD/.build-bench/pyvmomi-venv}"
python="${PYTHON:-python3}"
say() { printf 'pyvmomi-setup: %s\n' "$*" >&2; }

if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        say "venv creation failed; apt-get install python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv </dev/null >/dev/null \
            || { apt-get update -qq </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv </dev/null >/dev/null; }
        "$python" -m venv "$venv"
    fi
    say "created $venv"
fi

want="${PIN#*==}"
have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("pyvmomi"))' 2>/dev/null || true)"
if [[ "$have" == "$want" ]]; then
    say "pyvmomi $have already installed"
else
    say "pip install $PIN${have:+ (had $have)}"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$PIN" >&2
fi
echo "$venv/bin/python"
