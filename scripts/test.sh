#!/usr/bin/env bash
# The project's test command: machine setup (scripts/setup.sh), `swift build` (so the
# `converge` binary the end-to-end tests run exists), then `swift test` with any extra
# arguments passed through, e.g. `scripts/test.sh --filter ConvergeCoreTests`.
# Exits non-zero when the build or any test fails.
#
# Environment:
#   CONVERGE_TEST_POSTGRES_URL   a PostgreSQL for the store tests; unset: scripts/postgres.sh starts one
#   CONVERGE_VCSIM               the vCenter simulator binary; unset: scripts/vcsim.sh builds it
#   CONVERGE_TEST_REGISTRY       a Docker registry for the registry tests (with the other variables
#                                scripts/registry.sh prints); unset: scripts/registry.sh starts one
#   CONVERGE_TEST_KUBECONFIG     a kubeconfig for the Kubernetes tests (with CONVERGE_TEST_KUBE_TOKEN_FILE);
#                                unset: scripts/kube-apiserver.sh builds and starts one
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

# The store tests need PostgreSQL: start the throwaway server (or reuse the running one) unless
# the caller points at their own. If it cannot start, the PostgreSQL tests fail and say why.
if [[ -z "${CONVERGE_TEST_POSTGRES_URL:-}" ]]; then
    if pg_env="$(bash scripts/postgres.sh)"; then
        eval "$pg_env"
        export CONVERGE_TEST_POSTGRES_URL
    else
        echo "test: WARNING: scripts/postgres.sh failed; the PostgreSQL store tests will fail" >&2
    fi
fi

# The registry tests' Docker registry (Debian's docker-registry, TLS and htpasswd, on loopback).
if [[ -z "${CONVERGE_TEST_REGISTRY:-}" ]]; then
    if registry_env="$(bash scripts/registry.sh)"; then
        eval "$registry_env"
        export CONVERGE_TEST_REGISTRY CONVERGE_TEST_REGISTRY_USER CONVERGE_TEST_REGISTRY_PASSWORD_FILE CONVERGE_TEST_REGISTRY_LOG
    else
        echo "test: WARNING: scripts/registry.sh failed; the registry tests will fail" >&2
    fi
fi

# The vCenter simulator for the vSphere tests, built from Debian's Go packages.
if [[ -z "${CONVERGE_VCSIM:-}" ]]; then
    CONVERGE_VCSIM="$(bash scripts/vcsim.sh)" || echo "test: WARNING: scripts/vcsim.sh failed; the vCenter tests will fail" >&2
    export CONVERGE_VCSIM
fi

# The Kubernetes tests' API server: kube-apiserver built from Debian's source package (cached in
# /var/cache/converge, built once per machine) with etcd, on loopback; a running one is reused.
if [[ -z "${CONVERGE_TEST_KUBECONFIG:-}" ]]; then
    if kube_env="$(bash scripts/kube-apiserver.sh --start)"; then
        eval "$kube_env"
        export CONVERGE_TEST_KUBE_URL CONVERGE_TEST_KUBE_CA CONVERGE_TEST_KUBE_TOKEN_FILE CONVERGE_TEST_KUBECONFIG
    else
        echo "test: WARNING: scripts/kube-apiserver.sh failed; the Kubernetes tests will fail" >&2
    fi
fi

# Helm's library for the chart tests (a virtualenv from PyPI, cached in /var/cache/converge).
bash scripts/helm-sdk.sh >/dev/null || echo "test: WARNING: scripts/helm-sdk.sh failed; the chart tests will fail" >&2

start=$SECONDS
echo "test: swift test $*"
rc=0
# One test at a time: the end-to-end suites all drive the same dockerd, and run together on
# two cores they pushed single engine calls past 30 s and let traffic cross bridges Docker
# should isolate. Serial, the suite takes about 2.5 minutes and the engine stays responsive.
swift test --no-parallel "$@" || rc=$?
echo "test: swift test finished in $((SECONDS - start)) s (exit $rc)"
exit "$rc"
