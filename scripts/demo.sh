#!/usr/bin/env bash
# The first thing to run: sets the machine up (scripts/setup.sh), builds `converge` and the
# tests in the debug configuration (exactly what scripts/test.sh builds, so the test command
# that follows compiles nothing), starts govmomi's vCenter simulator on 127.0.0.1:18443
# (scripts/vcsim.sh builds it), and reconciles the example manifests read from HEAD:
# manifests/ against the local Docker engine, manifests-vcenter/ against the simulator,
# manifests-ansible/ (playbooks, a nightly schedule) on two sshd containers it starts, and
# manifests-rollouts/ (scenario S2: three services behind their entry points, a pipeline) as
# Converge instance converge-s2:
#   1. converge reconcile --dry-run   shows the plan (exit 2: changes pending)
#   2. converge reconcile             applies it
#   3. converge reconcile --dry-run   shows nothing left to do (exit 0: in sync)
# Then it lists the schedules and the inventory. The binary stays at .build/debug/converge for
# the README's examples.
# Extra arguments go to every `converge reconcile`, e.g. `scripts/demo.sh --output markdown`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

last_rc=0
say() { printf '\ndemo: %s\n' "$*"; }

bash scripts/setup.sh

# The debug build with the tests, as scripts/test.sh builds: one build serves both commands.
say "building converge and its tests (swift build --build-tests; the first build takes several minutes)"
start=$SECONDS
swift build --build-tests
bin="$(swift build --show-bin-path)/converge"
[[ -x "$bin" ]] || { echo "demo: ERROR: the build did not produce $bin" >&2; exit 1; }
say "built .build/debug/converge (and the tests) in $((SECONDS - start)) s"

# The example sets, each its own reconcile: the Docker lab, the VM on the simulator, the
# playbooks, the rollouts. The rollouts share the Docker engine with manifests/, so they are
# another Converge instance: each prunes only what it made.
sets=(manifests manifests-vcenter manifests-ansible manifests-rollouts)
instance_of() { [[ "$1" == manifests-rollouts ]] && echo "${CONVERGE_INSTANCE:-converge}-s2" || echo "${CONVERGE_INSTANCE:-converge}"; }

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
    ((rc == 0)) || last_rc=$rc
}

# Runs `reconcile ARGS... --repo . --path SET` for every example set.
reconcile_sets() {
    last_rc=0
    for set in "${sets[@]}"; do
        reconcile "$@" --repo . --path "$set" --instance "$(instance_of "$set")" "${extra[@]}"
    done
}

say "starting the vCenter simulator for manifests-vcenter/ (https://127.0.0.1:18443/sdk)"
vcsim_pid="$(bash scripts/vcsim.sh --start 127.0.0.1:18443)"
# Stopped at the end, and waited for, so the port is free for the README's examples at once.
stop_vcsim() {
    kill "$vcsim_pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$vcsim_pid" 2>/dev/null || break; sleep 0.1; done
}
trap stop_vcsim EXIT
export VCENTER_PASSWORD=pass   # the simulator's; manifests-vcenter/00-vcenter.yaml reads it from here

# manifests-ansible/: two playbook targets (sshd and python3) at the inventory's addresses, with
# a key made on this machine; the inventory reads the private key from the environment.
say "starting two playbook targets for manifests-ansible/ (converge-lab/sshd:1 on 192.168.150.0/24)"
key=.converge/demo-ssh/id_ed25519
mkdir -p "$(dirname "$key")"
[[ -f "$key" ]] || ssh-keygen -q -t ed25519 -N '' -C converge-demo -f "$key"
docker network inspect converge-demo-ssh >/dev/null 2>&1 \
    || docker network create --subnet 192.168.150.0/24 converge-demo-ssh >/dev/null
# Kept while they run: the store remembers that the baseline ran on them, and a fresh
# container would not have it (`converge playbooks run web-baseline` runs it again).
for index in 1 2; do
    name="converge-demo-web-$index"
    [[ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" == true ]] && continue
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --network converge-demo-ssh --ip "192.168.150.1$((index - 1))" \
        -e AUTHORIZED_KEYS="$(cat "$key.pub")" converge-lab/sshd:1 >/dev/null
done
CONVERGE_DEMO_SSH_KEY="$(cat "$key")"
export CONVERGE_DEMO_SSH_KEY
extra=("$@")

say "1/3 what would change"
reconcile_sets --dry-run

say "2/3 apply"
reconcile_sets

say "3/3 what is left to change"
reconcile_sets --dry-run
say "the schedules of manifests-ansible/ and the hosts of its inventory"
"$bin" schedules --repo . --path manifests-ansible
"$bin" inventory --repo . --path manifests-ansible
if [[ "$last_rc" == 0 ]]; then
    say "the Docker engine matches manifests/ and manifests-rollouts/ (curl http://127.0.0.1:18081/), the vCenter simulator manifests-vcenter/, and the playbooks of manifests-ansible/ ran on their hosts"
else
    say "changes are still pending after the apply: see the plans above"
fi
say "the binary is .build/debug/converge; to run the README's examples as written:
    export PATH=\"\$PWD/.build/debug:\$PATH\"
    converge reconcile --dry-run manifests/
(the simulator stops with this script: the README's \"VMs on vCenter\" says how to start it again)"
