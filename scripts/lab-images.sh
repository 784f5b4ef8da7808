#!/usr/bin/env bash
# Builds the local lab images that Converge's tests and demo run, without any image registry:
#
#   converge-lab/busybox:1  a root of Debian's busybox-static (/bin/busybox) with applet links,
#                           a /www/index.html and minimal /etc/passwd and /etc/group.
#                           Client: `sleep infinity`; HTTP server: `httpd -f -p 80 -h /www`.
#   converge-lab/router:1   a Debian bookworm minbase root (debootstrap) with iproute2,
#                           nftables, iptables, frr and iputils-ping. CMD sleep infinity.
#   converge-lab/sshd:1     an Ansible target: a Debian bookworm minbase root (debootstrap) with
#                           openssh-server, python3 and sudo. User converge (uid 1000, /bin/bash)
#                           with passwordless sudo; password logins off; ssh host keys made once
#                           at build, so every container of the image shares them. CMD
#                           /usr/local/bin/lab-sshd: writes the public keys in $AUTHORIZED_KEYS
#                           (one a line) to converge's and root's ~/.ssh/authorized_keys, then
#                           runs `sshd -D -e` (port 22, log on stderr).
#   converge-lab/haproxy:1  a rollout's traffic entry point: a Debian bookworm minbase root
#                           (debootstrap) with haproxy (2.6). Converge writes its configuration
#                           and switches it through the runtime API (see the Rollout kind).
#
# Each image carries the label converge.dev/recipe=<sha256 of its recipe>; an image whose
# label matches the current recipe is reused, so a second run costs only the checks.
#
# `scripts/lab-images.sh --controller BINARY [TAG]` builds only the controller's image instead,
# converge/controller:TAG (default 0.1.0): a Debian bookworm minbase root with the libraries the
# binary links (libgit2, SQLite, libxml2, CA certificates), cached as a tarball in
# /var/cache/converge keyed by its recipe, plus BINARY and the Swift runtime it was built with
# under /opt/converge, run as user 65532. Import it into a node's runtime, or push it.
#
# Environment:
#   CONVERGE_SKIP_ROUTER_IMAGE=1    don't build (or check) the router image
#   CONVERGE_SKIP_SSHD_IMAGE=1      don't build (or check) the sshd image
#   CONVERGE_SKIP_HAPROXY_IMAGE=1   don't build (or check) the haproxy image
#   CONVERGE_REBUILD_LAB_IMAGES=1   rebuild even when the recipe label matches
#   CONVERGE_DEBIAN_MIRROR=URL      Debian mirror for debootstrap (default: the one apt uses)
set -euo pipefail

BUSYBOX_IMAGE="converge-lab/busybox:1"
ROUTER_IMAGE="converge-lab/router:1"
SSHD_IMAGE="converge-lab/sshd:1"
HAPROXY_IMAGE="converge-lab/haproxy:1"
RECIPE_LABEL="converge.dev/recipe"

# Applets the tests rely on; the image links every applet busybox has, these must be among them.
BUSYBOX_REQUIRED_APPLETS="sh ping wget httpd nc sleep ip cat echo ls route ifconfig hostname printf grep true false env"
BUSYBOX_CHANGES=('CMD ["/bin/sh"]')

ROUTER_SUITE="bookworm"
ROUTER_INCLUDE="iproute2,nftables,iptables,frr,iputils-ping"
ROUTER_CHANGES=('CMD ["sleep","infinity"]')

SSHD_INCLUDE="openssh-server,python3,sudo"
SSHD_CHANGES=('CMD ["/usr/local/bin/lab-sshd"]')
# /etc/ssh/sshd_config.d/converge-lab.conf (Debian's sshd_config includes the drop-ins first,
# and the first value sshd reads wins). MaxStartups and MaxSessions: many parallel Ansible
# connections and multiplexed sessions.
SSHD_CONFIG='PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PermitRootLogin prohibit-password
MaxStartups 100:30:200
MaxSessions 50'
# /usr/local/bin/lab-sshd, the image's CMD.
SSHD_ENTRYPOINT='#!/bin/sh
# converge-lab/sshd entry point: authorizes the public keys in $AUTHORIZED_KEYS (one a line)
# for users converge and root, then runs sshd in the foreground, logging to stderr.
set -eu
if [ -z "${AUTHORIZED_KEYS:-}" ]; then
    echo "lab-sshd: AUTHORIZED_KEYS is empty: no key can log in" >&2
fi
for home in /home/converge /root; do
    mkdir -p "$home/.ssh"
    printf "%s\n" "${AUTHORIZED_KEYS:-}" >"$home/.ssh/authorized_keys"
    chmod 0700 "$home/.ssh"
    chmod 0600 "$home/.ssh/authorized_keys"
done
chown -R converge:converge /home/converge/.ssh
mkdir -p /run/sshd
chmod 0755 /run/sshd
# sshd records logins in utmp; without it every logout logs "logout() returned an error".
[ -e /run/utmp ] || install -m 0664 -g utmp /dev/null /run/utmp
exec /usr/sbin/sshd -D -e "$@"'

HAPROXY_INCLUDE="haproxy"
HAPROXY_CHANGES=('CMD ["haproxy","-v"]')

CONTROLLER_INCLUDE="libgit2-1.5,libsqlite3-0,libxml2,ca-certificates"
CONTROLLER_CHANGES=('ENTRYPOINT ["/opt/converge/converge"]' 'CMD ["controller"]' 'USER 65532:65532' 'WORKDIR /var/lib/converge')

say() { printf 'lab-images: %s\n' "$*"; }
die() { printf 'lab-images: ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed: run scripts/setup.sh"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "the Docker engine does not answer on /var/run/docker.sock: run scripts/setup.sh"

# One run at a time: two concurrent builds of the same tag would race.
exec 9>/var/lock/converge-lab-images.lock
if ! flock -n 9; then
    say "another lab-images run holds /var/lock/converge-lab-images.lock; waiting (up to 20 min)"
    flock -w 1200 9 || die "timed out waiting for /var/lock/converge-lab-images.lock"
fi

sha256_of_stdin() { sha256sum | cut -d' ' -f1; }

image_recipe() {  # IMAGE -> the recipe label of the local image, or nothing
    docker image inspect --format "{{ index .Config.Labels \"$RECIPE_LABEL\" }}" "$1" 2>/dev/null || true
}

needs_build() {  # IMAGE HASH
    local have
    [[ "${CONVERGE_REBUILD_LAB_IMAGES:-0}" == 1 ]] && return 0
    have="$(image_recipe "$1")"
    [[ "$have" != "$2" ]]
}

# Removes a scratch root made here: unmounts anything left mounted below it first (never
# follows mounts while deleting), so a failed debootstrap can't take host files with it.
remove_root() {
    local dir="$1" m
    [[ -n "$dir" && -d "$dir" ]] || return 0
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
    if awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        say "WARNING: $dir still has mounts below it; left in place"
        return 0
    fi
    rm -rf --one-file-system "$dir"
}

SCRATCH_DIRS=()
cleanup() {
    local d
    for d in "${SCRATCH_DIRS[@]}"; do remove_root "$d"; done
}
trap cleanup EXIT

import_root() {  # DIR IMAGE HASH CHANGES...
    local dir="$1" image="$2" hash="$3"; shift 3
    local args=() c old new
    for c in "$@"; do args+=(-c "$c"); done
    args+=(-c "LABEL $RECIPE_LABEL=$hash")
    old="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
    tar --numeric-owner -C "$dir" -c . | docker import "${args[@]}" - "$image" >/dev/null
    new="$(docker image inspect --format '{{.Id}}' "$image")"
    # The replaced image is now untagged: drop it unless a container still uses it.
    if [[ -n "$old" && "$old" != "$new" ]]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------------------------------------
# busybox image. The recipe is this function's text, the applet list, the image changes and the
# busybox binary itself (its hash and its Debian version).
build_busybox_rootfs() {
    local root="$1" busybox="$2" applet
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,www,var/run,proc,sys,dev}
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    install -m 0755 "$busybox" "$root/bin/busybox"
    "$busybox" --list >"$root/.applets"
    while IFS= read -r applet; do
        [[ -z "$applet" || "$applet" == busybox || "$applet" == */* ]] && continue
        ln -s busybox "$root/bin/$applet"
    done <"$root/.applets"
    rm -f "$root/.applets"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n' >"$root/etc/group"
    printf 'converge lab http server\n' >"$root/www/index.html"
}

busybox_image() {
    local busybox=/bin/busybox applet version recipe hash root start
    [[ -x "$busybox" ]] || die "$busybox is missing: install Debian's busybox-static (scripts/setup.sh)"
    if ldd "$busybox" >/dev/null 2>&1; then
        die "$busybox is dynamically linked: install Debian's busybox-static instead of busybox"
    fi
    local applets
    applets=" $("$busybox" --list | tr '\n' ' ') "
    for applet in $BUSYBOX_REQUIRED_APPLETS; do
        [[ "$applets" == *" $applet "* ]] || die "busybox at $busybox has no '$applet' applet"
    done
    version="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || "$busybox" | head -n1)"
    recipe="$(declare -f build_busybox_rootfs
              printf '%s\n' "$BUSYBOX_REQUIRED_APPLETS" "${BUSYBOX_CHANGES[@]}" \
                  "busybox-static $version" "$(sha256sum <"$busybox")")"
    hash="$(printf '%s' "$recipe" | sha256_of_stdin)"

    if needs_build "$BUSYBOX_IMAGE" "$hash"; then
        start=$SECONDS
        say "building $BUSYBOX_IMAGE (busybox-static $version, recipe ${hash:0:12})"
        root="$(mktemp -d /var/tmp/converge-busybox-root.XXXXXX)"
        SCRATCH_DIRS+=("$root")
        build_busybox_rootfs "$root" "$busybox"
        import_root "$root" "$BUSYBOX_IMAGE" "$hash" "${BUSYBOX_CHANGES[@]}"
        remove_root "$root"
        say "built $BUSYBOX_IMAGE in $((SECONDS - start)) s"
    else
        say "$BUSYBOX_IMAGE is up to date (recipe ${hash:0:12})"
    fi

    local out
    out="$(docker run --rm "$BUSYBOX_IMAGE" sh -c 'wget --help >/dev/null 2>&1; command -v httpd nc ping ip >/dev/null && echo ok' 2>&1)" \
        || die "$BUSYBOX_IMAGE does not run: $out"
    [[ "$out" == ok ]] || die "$BUSYBOX_IMAGE check printed '$out' instead of 'ok'"
    say "$BUSYBOX_IMAGE runs: ok"
}

# ---------------------------------------------------------------------------------------------
# router image.

# The Debian mirror apt already uses for the suite: one-line sources (sources.list, *.list) and
# deb822 sources (*.sources), first match wins; deb.debian.org otherwise.
debian_mirror() {
    if [[ -n "${CONVERGE_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "$CONVERGE_DEBIAN_MIRROR"
        return
    fi
    local f uri=""
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        uri="$(awk -v suite="$ROUTER_SUITE" '
            /^[ \t]*deb[ \t]/ {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f")"
        [[ -n "$uri" ]] && break
    done
    if [[ -z "$uri" ]]; then
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -r "$f" ]] || continue
            uri="$(awk -v suite="$ROUTER_SUITE" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " suite " ") && uris != "") {
                        split(uris, u, " "); print u[1]; done = 1
                    }
                    types = ""; suites = ""; uris = ""; enabled = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); if (done) exit; next }
                {
                    key = tolower($1); sub(/:$/, "", key)
                    val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                    if (key == "types") types = val
                    else if (key == "suites") suites = val
                    else if (key == "uris") uris = val
                    else if (key == "enabled") enabled = tolower(val)
                }
                END { if (!done) flush() }' "$f")"
            [[ -n "$uri" ]] && break
        done
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# The recipe is this function's text, the suite, the package list and the image changes (not the
# mirror: every mirror serves the same suite).
build_router_rootfs() {
    debootstrap_root "$1" "$2" "$3" "$ROUTER_INCLUDE"
}

# A Debian minbase root of $ROUTER_SUITE with INCLUDE, caches and logs removed.
debootstrap_root() {  # ROOT MIRROR CACHE INCLUDE
    local root="$1" mirror="$2" cache="$3" include="$4"
    debootstrap --variant=minbase --include="$include" --cache-dir="$cache" \
        "$ROUTER_SUITE" "$root" "$mirror" >"$root.log" 2>&1 || {
        tail -n 30 "$root.log" >&2
        die "debootstrap of $ROUTER_SUITE from $mirror failed (log above, full log: $root.log)"
    }
    rm -f "$root.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* \
        "$root"/var/log/*.log "$root"/var/log/apt/*
}

# Builds IMAGE from a Debian root that BUILD (a function: ROOT MIRROR CACHE) makes, unless the
# image's recipe label is HASH already; CHANGES are the image's Dockerfile-style changes.
debootstrap_image() {  # IMAGE BUILD HASH CHANGES...
    local image="$1" build="$2" hash="$3" mirror root cache start
    shift 3
    if ! needs_build "$image" "$hash"; then
        say "$image is up to date (recipe ${hash:0:12})"
        return
    fi
    command -v debootstrap >/dev/null || die "debootstrap is not installed: run scripts/setup.sh"
    mirror="$(debian_mirror)"
    start=$SECONDS
    say "building $image with debootstrap $ROUTER_SUITE from $mirror (recipe ${hash:0:12}; about a minute)"
    root="$(mktemp -d /var/tmp/converge-lab-root.XXXXXX)"
    SCRATCH_DIRS+=("$root")
    cache=/var/cache/converge/debootstrap
    mkdir -p "$cache"
    "$build" "$root" "$mirror" "$cache"
    say "debootstrap done in $((SECONDS - start)) s; importing"
    import_root "$root" "$image" "$hash" "$@"
    remove_root "$root"
    say "built $image in $((SECONDS - start)) s"
}

router_image() {
    local recipe hash out
    recipe="$(declare -f debootstrap_root build_router_rootfs
              printf '%s\n' "$ROUTER_SUITE" "$ROUTER_INCLUDE" "${ROUTER_CHANGES[@]}")"
    hash="$(printf '%s' "$recipe" | sha256_of_stdin)"
    debootstrap_image "$ROUTER_IMAGE" build_router_rootfs "$hash" "${ROUTER_CHANGES[@]}"

    out="$(docker run --rm "$ROUTER_IMAGE" sh -c 'nft --version && ip -V && test -x /usr/lib/frr/zebra && command -v ping' 2>&1)" \
        || die "$ROUTER_IMAGE does not run: $out"
    say "$ROUTER_IMAGE runs: ${out//$'\n'/; }"
}

# ---------------------------------------------------------------------------------------------
# sshd image. The recipe is this function's text, the suite, the package list, the sshd config,
# the entry point script and the image changes.
build_sshd_rootfs() {
    local root="$1"
    debootstrap_root "$root" "$2" "$3" "$SSHD_INCLUDE"
    chroot "$root" useradd --uid 1000 --user-group --create-home --home-dir /home/converge \
        --shell /bin/bash converge
    chroot "$root" usermod --password '*' converge  # no password, but not locked
    printf 'converge ALL=(ALL:ALL) NOPASSWD: ALL\n' >"$root/etc/sudoers.d/converge"
    chmod 0440 "$root/etc/sudoers.d/converge"
    chroot "$root" visudo -c -q -f /etc/sudoers.d/converge >/dev/null \
        || die "visudo rejects /etc/sudoers.d/converge"
    chroot "$root" ssh-keygen -A >/dev/null  # each type whose key is missing
    mkdir -p "$root/run/sshd" "$root/etc/ssh/sshd_config.d"
    chmod 0755 "$root/run/sshd"
    : >"$root/run/utmp"
    chroot "$root" chgrp utmp /run/utmp
    chmod 0664 "$root/run/utmp"
    printf '%s\n' "$SSHD_CONFIG" >"$root/etc/ssh/sshd_config.d/converge-lab.conf"
    printf '%s\n' "$SSHD_ENTRYPOINT" >"$root/usr/local/bin/lab-sshd"
    chmod 0755 "$root/usr/local/bin/lab-sshd"
}

sshd_image() {
    local recipe hash out
    recipe="$(declare -f debootstrap_root build_sshd_rootfs
              printf '%s\n' "$ROUTER_SUITE" "$SSHD_INCLUDE" "$SSHD_CONFIG" "$SSHD_ENTRYPOINT" \
                  "${SSHD_CHANGES[@]}")"
    hash="$(printf '%s' "$recipe" | sha256_of_stdin)"
    debootstrap_image "$SSHD_IMAGE" build_sshd_rootfs "$hash" "${SSHD_CHANGES[@]}"

    out="$(docker run --rm "$SSHD_IMAGE" sh -c 'python3 --version && /usr/sbin/sshd -t && test -x /usr/lib/openssh/sftp-server && su converge -c "sudo -n true" && echo "sudo: ok"' 2>&1)" \
        || die "$SSHD_IMAGE does not run: $out"
    say "$SSHD_IMAGE runs: ${out//$'\n'/; }"
}

# ---------------------------------------------------------------------------------------------
# haproxy image. The recipe is this function's text, the suite, the package list and the image
# changes.
build_haproxy_rootfs() {
    debootstrap_root "$1" "$2" "$3" "$HAPROXY_INCLUDE"
}

haproxy_image() {
    local recipe hash out
    recipe="$(declare -f debootstrap_root build_haproxy_rootfs
              printf '%s\n' "$ROUTER_SUITE" "$HAPROXY_INCLUDE" "${HAPROXY_CHANGES[@]}")"
    hash="$(printf '%s' "$recipe" | sha256_of_stdin)"
    debootstrap_image "$HAPROXY_IMAGE" build_haproxy_rootfs "$hash" "${HAPROXY_CHANGES[@]}"

    out="$(docker run --rm "$HAPROXY_IMAGE" sh -c 'haproxy -v | head -n 1' 2>&1)" \
        || die "$HAPROXY_IMAGE does not run: $out"
    say "$HAPROXY_IMAGE runs: $out"
}

# ---------------------------------------------------------------------------------------------
# controller image. The root's recipe is this function's text, the suite and the package list;
# the image's is that and the binary's hash.
build_controller_rootfs() {
    local root="$1"
    debootstrap_root "$root" "$2" "$3" "$CONTROLLER_INCLUDE"
    printf 'converge:x:65532:65532:converge:/var/lib/converge:/usr/sbin/nologin\n' >>"$root/etc/passwd"
    printf 'converge:x:65532:\n' >>"$root/etc/group"
    mkdir -p "$root/var/lib/converge" "$root/var/cache/converge"
    chown 65532:65532 "$root/var/lib/converge" "$root/var/cache/converge"
}

controller_image() {
    local binary="$1" tag="$2" image recipe root_hash hash root tarball mirror start lib
    image="converge/controller:$tag"
    [[ -x "$binary" ]] || die "$binary is not an executable (build it: swift build -c release --product converge)"
    recipe="$(declare -f debootstrap_root build_controller_rootfs; printf '%s\n' "$ROUTER_SUITE" "$CONTROLLER_INCLUDE")"
    root_hash="$(printf '%s' "$recipe" | sha256_of_stdin)"
    hash="$(printf '%s\n' "$root_hash" "${CONTROLLER_CHANGES[@]}" "$(sha256sum <"$binary")" | sha256_of_stdin)"
    if ! needs_build "$image" "$hash"; then
        say "$image is up to date (recipe ${hash:0:12})"
        return
    fi
    start=$SECONDS
    root="$(mktemp -d /var/tmp/converge-controller-root.XXXXXX)"
    SCRATCH_DIRS+=("$root")
    tarball="/var/cache/converge/controller-root-${root_hash:0:16}.tar"
    if [[ -f "$tarball" ]]; then
        tar --numeric-owner -C "$root" -xf "$tarball"
    else
        command -v debootstrap >/dev/null || die "debootstrap is not installed: run scripts/setup.sh"
        mirror="$(debian_mirror)"
        say "building the controller root with debootstrap $ROUTER_SUITE from $mirror (about a minute)"
        mkdir -p /var/cache/converge/debootstrap
        build_controller_rootfs "$root" "$mirror" /var/cache/converge/debootstrap
        tar --numeric-owner -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    fi
    mkdir -p "$root/opt/converge"
    install -m 0755 "$binary" "$root/opt/converge/converge"
    # The Swift runtime the binary was linked with, beside it ($ORIGIN is in its RUNPATH).
    for lib in $(ldd "$binary" | awk '$3 ~ /\/swift\// { print $3 }'); do
        install -m 0644 "$lib" "$root/opt/converge/"
    done
    import_root "$root" "$image" "$hash" "${CONTROLLER_CHANGES[@]}"
    remove_root "$root"
    out="$(docker run --rm "$image" --version 2>&1)" || die "$image does not run: $out"
    say "built $image in $((SECONDS - start)) s; converge --version: $out"
}

if [[ "${1:-}" == --controller ]]; then
    controller_image "${2:?usage: lab-images.sh --controller BINARY [TAG]}" "${3:-0.1.0}"
    exit 0
fi

total_start=$SECONDS
busybox_image
if [[ "${CONVERGE_SKIP_ROUTER_IMAGE:-0}" == 1 ]]; then
    say "skipping $ROUTER_IMAGE (CONVERGE_SKIP_ROUTER_IMAGE=1)"
else
    router_image
fi
if [[ "${CONVERGE_SKIP_SSHD_IMAGE:-0}" == 1 ]]; then
    say "skipping $SSHD_IMAGE (CONVERGE_SKIP_SSHD_IMAGE=1)"
else
    sshd_image
fi
if [[ "${CONVERGE_SKIP_HAPROXY_IMAGE:-0}" == 1 ]]; then
    say "skipping $HAPROXY_IMAGE (CONVERGE_SKIP_HAPROXY_IMAGE=1)"
else
    haproxy_image
fi
say "done in $((SECONDS - total_start)) s"
