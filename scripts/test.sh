#!/usr/bin/env bash
# The project's test command: machine setup (scripts/setup.sh), `swift build` (so the
# `converge` binary the end-to-end tests run exists), then `swift test` with any extra
# arguments passed through, e.g. `scripts/test.sh --filter ConvergeCoreTests`.
# Exits non-zero when the build or any test fails.
#
# Environment:
#   CONVERGE_SKIP_SETUP=1   don't run scripts/setup.sh (the machine is known to be ready)
#   CI=true                 also exports CONVERGE_REQUIRE_COMPONENTS=1
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null || { echo "test: ERROR: swift is not on PATH (nor at /opt/swift/usr/bin)" >&2; exit 1; }

if [[ "${CI:-}" == true ]]; then
    export CONVERGE_REQUIRE_COMPONENTS=1
fi

if [[ "${CONVERGE_SKIP_SETUP:-0}" != 1 ]]; then
    bash scripts/setup.sh
fi

start=$SECONDS
echo "test: swift build"
swift build
echo "test: swift build done in $((SECONDS - start)) s"

start=$SECONDS
echo "test: swift test $*"
rc=0
swift test "$@" || rc=$?
echo "test: swift test finished in $((SECONDS - start)) s (exit $rc)"
exit "$rc"
