#!/usr/bin/env bash
# The first thing to run: sets the machine up (scripts/setup.sh), builds the release `converge`
# binary, starts govmomi's vCenter simulator on 127.0.0.1:18443 (scripts/vcsim.sh builds it),
# and reconciles the example manifests in manifests/ against the local Docker engine and the
# simulator (manifests/vcenter/):
#   1. converge reconcile --dry-run   shows the plan (exit 2: changes pending)
#   2. converge reconcile             applies it
#   3. converge reconcile --dry-run   shows nothing left to do (exit 0: in sync)
# Extra arguments go to every `converge reconcile`, e.g. `scripts/demo.sh --output markdown`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

last_rc=0
say() { printf '\ndemo: %s\n' "$*"; }

bash scripts/setup.sh

say "building converge (swift build -c release; the first build takes a few minutes)"
start=$SECONDS
swift build -c release --product converge
bin="$(swift build -c release --show-bin-path)/converge"
[[ -x "$bin" ]] || { echo "demo: ERROR: the build did not produce $bin" >&2; exit 1; }
say "built $bin in $((SECONDS - start)) s"

# Runs `converge reconcile ARGS...`; 0 (in sync) and 2 (changes pending) are results, not failures.
reconcile() {
    local rc=0
    echo "\$ ${bin#"$PWD"/} reconcile $*"
    "$bin" reconcile "$@" || rc=$?
    case "$rc:$1" in
        0:--dry-run) echo "(exit 0: in sync)" ;;
        2:--dry-run) echo "(exit 2: changes pending)" ;;
        0:*) echo "(exit 0: applied)" ;;
        2:*) echo "(exit 2: applied in part; changes still pending)" ;;
        *) echo "demo: ERROR: converge reconcile $* failed (exit $rc)" >&2; exit "$rc" ;;
    esac
    last_rc=$rc
}

say "starting the vCenter simulator for manifests/vcenter/ (https://127.0.0.1:18443/sdk)"
vcsim="$(bash scripts/vcsim.sh)"
vcsim_log="$(mktemp)"
"$vcsim" -listen 127.0.0.1:18443 >"$vcsim_log" 2>&1 &
vcsim_pid=$!
trap 'kill "$vcsim_pid" 2>/dev/null; rm -f "$vcsim_log"' EXIT
for _ in $(seq 100); do
    grep -q VCSIM_READY "$vcsim_log" && break
    kill -0 "$vcsim_pid" 2>/dev/null || { cat "$vcsim_log" >&2; echo "demo: ERROR: the simulator did not start (is port 18443 free?)" >&2; exit 1; }
    sleep 0.1
done
export VCENTER_PASSWORD=pass   # the simulator's; manifests/vcenter/00-vcenter.yaml reads it from here

say "1/3 what would change"
reconcile --dry-run --repo . --path manifests "$@"

say "2/3 apply"
reconcile --repo . --path manifests "$@"

say "3/3 what is left to change"
reconcile --dry-run --repo . --path manifests "$@"
if [[ "$last_rc" == 0 ]]; then
    say "the Docker engine and the vCenter now match manifests/"
else
    say "changes are still pending after the apply: see the plan above"
fi
