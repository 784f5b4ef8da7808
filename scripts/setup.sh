#!/usr/bin/env bash
# Machine setup for Converge on Debian bookworm, as root. Idempotent and fast when all is in
# place: installs the Debian packages the build and the tests need (apt-get update only when
# something is missing), makes sure a Docker engine answers on /var/run/docker.sock (starting
# dockerd in the background when none does; there is no systemd), then builds the lab images
# (scripts/lab-images.sh).
#
# Environment:
#   CONVERGE_SKIP_LAB_IMAGES=1   don't run scripts/lab-images.sh
#   (and those of scripts/lab-images.sh, e.g. CONVERGE_SKIP_ROUTER_IMAGE=1)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

PACKAGES=(
    libgit2-dev pkg-config libsqlite3-dev git curl ca-certificates
    docker.io docker-compose iproute2
    busybox-static debootstrap debian-archive-keyring
    postgresql
    python3 python3-venv openssl
    ansible openssh-client
    docker-registry apache2-utils
)
DOCKER_SOCK=/var/run/docker.sock
DOCKERD_LOG=/var/log/converge-dockerd.log

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (it installs Debian packages and starts dockerd)"

start=$SECONDS

# --- Debian packages ---------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    say "installing: ${missing[*]}"
    say "apt-get update"
    apt-get "${apt_opts[@]}" update -qq </dev/null || die "apt-get update failed"
    apt-get "${apt_opts[@]}" install -y -qq "${missing[@]}" </dev/null \
        >/var/log/converge-apt.log 2>&1 || {
        tail -n 30 /var/log/converge-apt.log >&2
        die "apt-get install ${missing[*]} failed (log above, full log: /var/log/converge-apt.log)"
    }
    say "packages installed ($((SECONDS - start)) s)"
else
    say "Debian packages present"
fi

# --- Docker engine -----------------------------------------------------------------------------
docker_ping() { [[ "$(curl -s --max-time 3 --unix-socket "$DOCKER_SOCK" http://d/_ping 2>/dev/null)" == OK ]]; }

if docker_ping; then
    say "dockerd answers on $DOCKER_SOCK"
else
    # A dockerd may already be starting (e.g. one the docker.io package's init script just
    # started): wait for that one rather than start a second.
    pid=""
    [[ -r /var/run/docker.pid ]] && pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    if [[ -z "$pid" || "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]]; then
        pid="$(pgrep -xo dockerd 2>/dev/null || true)"
    fi
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        say "dockerd (pid $pid) is running but not answering yet; waiting"
    else
        command -v dockerd >/dev/null || die "dockerd is not installed (Debian package docker.io)"
        say "starting dockerd (log: $DOCKERD_LOG)"
        printf -- '--- %s: scripts/setup.sh starts dockerd\n' "$(date -Is)" >>"$DOCKERD_LOG"
        # setsid: dockerd must outlive this script and the job that ran it.
        setsid nohup dockerd </dev/null >>"$DOCKERD_LOG" 2>&1 &
        pid=$!
    fi
    for _ in $(seq 1 60); do
        docker_ping && break
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited before answering on $DOCKER_SOCK (log above, full log: $DOCKERD_LOG)"
        fi
        sleep 0.5
    done
    if ! docker_ping; then
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        die "dockerd did not answer on $DOCKER_SOCK within 30 s (log above, full log: $DOCKERD_LOG)"
    fi
    say "dockerd is up (pid $pid)"
fi

# --- lab images ----------------------------------------------------------------------------------
if [[ "${CONVERGE_SKIP_LAB_IMAGES:-0}" == 1 ]]; then
    say "skipping lab images (CONVERGE_SKIP_LAB_IMAGES=1)"
else
    bash "$here/lab-images.sh"
fi

say "done in $((SECONDS - start)) s"
