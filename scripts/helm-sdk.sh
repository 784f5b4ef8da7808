#!/usr/bin/env bash
# Helm for the chart tests: PyPI's helm-sdkpy (Helm v4's Go library wrapped for Python) in a
# virtualenv cached under /var/cache/converge, keyed by its version; made once per machine.
# Prints the venv's python. helm-sdkpy declares Python 3.12 but loads on Debian 12's 3.11.
set -euo pipefail

version=0.1.32
cache="${CONVERGE_CACHE:-/var/cache/converge}"
venv="$cache/helm-sdkpy-$version"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import helm_sdkpy' 2>/dev/null; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || { echo "helm-sdk: python3-venv is missing (scripts/setup.sh installs it)" >&2; exit 1; }
    rm -rf "$venv"
    mkdir -p "$cache"
    echo "helm-sdk: creating $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --ignore-requires-python "helm-sdkpy==$version" >&2
fi
echo "$venv/bin/python"
