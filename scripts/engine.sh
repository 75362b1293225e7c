#!/usr/bin/env bash
# Local container engine for orch: Docker 26 (Debian trixie) with the containerd
# image store, buildx, QEMU for linux/arm64 and a loopback-only OCI registry with
# seeded stand-in base images.  No image is ever pulled: everything is built here.
#
#   scripts/engine.sh up       install what is missing, start everything, seed images
#   scripts/engine.sh down     stop the registry and dockerd started by `up`
#   scripts/engine.sh status   print what runs; non-zero exit if something is missing
#
# Environment:
#   ORCH_ENGINE_STATE  state dir (pid files, logs, registry data)  [/var/lib/orch-engine]
#   ORCH_ENGINE_CACHE  download cache (debs, wheels, rootfs tars)  [/var/cache/orch-engine]
#   ORCH_REGISTRY      registry address (loopback only)            [127.0.0.1:5000]
#   ORCH_ENGINE_RESEED=1  rebuild and push the seeded images even if present
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${ORCH_ENGINE_STATE:-/var/lib/orch-engine}"
CACHE="${ORCH_ENGINE_CACHE:-/var/cache/orch-engine}"
REG="${ORCH_REGISTRY:-127.0.0.1:5000}"
export ORCH_ENGINE_STATE="$STATE" ORCH_ENGINE_CACHE="$CACHE" ORCH_REGISTRY="$REG"
export DEBIAN_FRONTEND=noninteractive

# Pinned versions seen working (Debian trixie), tried in order; fall back to what trixie serves.
# (trixie replaced docker.io 26.1.5+dfsg1-9+deb13u1 by the binNMU ...+b1, same source.)
PIN_DOCKER="26.1.5+dfsg1-9+deb13u1+b1 26.1.5+dfsg1-9+deb13u1"
PIN_CONTAINERD="1.7.24~ds1-6+deb13u1"
PIN_BUILDX="0.13.1+ds1-3"

log() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
T0=$(now)
phase_start=$T0
phase() { # phase NAME: print the time of the phase that just ended
    local t; t=$(now)
    awk -v a="$phase_start" -v b="$t" -v n="$1" 'BEGIN{printf "[engine] phase %-10s %6.1fs\n", n, b-a}' >&2
    phase_start=$t
}

# --- private apt state for Debian trixie (the system apt stays bookworm) -------------
trixie_apt() {
    local d="$CACHE/apt-trixie"
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    if [ ! -f "$d/sources.list" ]; then
        echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' \
            >"$d/sources.list"
    fi
    apt-get -q -o Dir::Etc::sourcelist="$d/sources.list" -o Dir::Etc::sourceparts=/dev/null \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o APT::Sandbox::User=root "$@"
}

engine_ok() { # a docker engine answers, with the containerd image store and buildx
    timeout 10 docker info >/dev/null 2>&1 || return 1
    timeout 10 docker info -f '{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter' || return 1
    timeout 10 docker buildx version >/dev/null 2>&1 || return 1
}

system_apt_updated=0
system_apt_install() { # install bookworm packages that are not installed yet
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ $system_apt_updated = 0 ]; then
        apt-get -q update >/dev/null
        system_apt_updated=1
    fi
    log "apt-get install ${missing[*]}"
    apt-get -q install -y --no-install-recommends "${missing[@]}" >/dev/null
}

download_pinned() { # download_pinned PKG "VERSION..." into the current dir; fall back to unpinned
    local pkg=$1 ver
    if ls "${pkg}"_*.deb >/dev/null 2>&1; then return 0; fi
    for ver in $2; do
        trixie_apt download "$pkg=$ver" >/dev/null 2>&1 && return 0
    done
    log "WARNING: $pkg ($2) is no longer served by trixie; taking trixie's current $pkg"
    trixie_apt download "$pkg" >/dev/null
}

install_engine() {
    if command -v dockerd >/dev/null && [ -x /usr/bin/containerd ] \
        && dpkg-query -W -f '${Version}' docker.io 2>/dev/null | grep -qv '^20\.'; then
        return 0
    fi
    log "installing Debian trixie docker.io, containerd, docker-buildx (private apt state)"
    local debs="$CACHE/debs"
    mkdir -p "$debs"
    trixie_apt update >/dev/null
    (cd "$debs" && download_pinned containerd "$PIN_CONTAINERD" \
        && download_pinned docker.io "$PIN_DOCKER" \
        && download_pinned docker-buildx "$PIN_BUILDX")
    if [ $system_apt_updated = 0 ]; then apt-get -q update >/dev/null; system_apt_updated=1; fi
    # Keep package scripts from starting services (we start dockerd ourselves).
    local policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy_added=1
    fi
    (cd "$debs" && apt-get -q install -y --no-install-recommends \
        ./containerd_*.deb ./docker.io_*.deb ./docker-buildx_*.deb >/dev/null)
    [ $policy_added = 1 ] && rm -f /usr/sbin/policy-rc.d
    log "installed: $(dpkg-query -W -f '${Package} ${Version}; ' containerd docker.io docker-buildx)"
}

link_buildx() { # make the buildx plugin visible to whichever docker client is on PATH
    docker buildx version >/dev/null 2>&1 && return 0
    local src=/usr/libexec/docker/cli-plugins/docker-buildx
    [ -x "$src" ] || die "docker-buildx plugin not found at $src"
    mkdir -p /usr/local/lib/docker/cli-plugins
    ln -sf "$src" /usr/local/lib/docker/cli-plugins/docker-buildx
    docker buildx version >/dev/null 2>&1 || die "docker buildx does not work even with the plugin linked"
}

start_dockerd() {
    engine_ok && return 0
    if timeout 10 docker info >/dev/null 2>&1; then
        die "a docker engine answers but without the containerd image store or buildx; stop it first"
    fi
    mkdir -p "$STATE/dockerd"
    local cfg="$STATE/dockerd/daemon.json"
    echo '{"features":{"containerd-snapshotter":true}}' >"$cfg"
    log "starting dockerd (log: $STATE/dockerd/dockerd.log)"
    setsid nohup dockerd --config-file "$cfg" --pidfile "$STATE/dockerd/dockerd.pid" \
        >>"$STATE/dockerd/dockerd.log" 2>&1 </dev/null &
    local i
    for i in $(seq 1 120); do
        timeout 5 docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    timeout 5 docker info >/dev/null 2>&1 || {
        tail -20 "$STATE/dockerd/dockerd.log" >&2 || true
        die "dockerd did not answer within 60 s (see $STATE/dockerd/dockerd.log)"
    }
    engine_ok || die "dockerd runs but lacks the containerd image store or buildx"
}

binfmt_aarch64_ok() {
    local f=/proc/sys/fs/binfmt_misc/qemu-aarch64
    [ -f "$f" ] && grep -q '^enabled' "$f" && grep -q '^flags:.*F' "$f"
}

setup_qemu() {
    binfmt_aarch64_ok && return 0
    [ -x /usr/bin/qemu-aarch64-static ] || die "qemu-user-static is not installed"
    if [ ! -f /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --enable qemu-aarch64
    binfmt_aarch64_ok || die "binfmt qemu-aarch64 not enabled with the F flag"
}

registry_ok() { curl -fsS -o /dev/null --max-time 3 "http://$REG/v2/" 2>/dev/null; }

start_registry() {
    registry_ok && return 0
    case "$REG" in 127.*|localhost:*) ;; *) die "ORCH_REGISTRY=$REG must be a loopback address";; esac
    mkdir -p "$STATE/registry/data"
    cat >"$STATE/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: $REG
EOF
    log "starting docker-registry on $REG (log: $STATE/registry/registry.log)"
    setsid nohup /usr/bin/docker-registry serve "$STATE/registry/config.yml" \
        >>"$STATE/registry/registry.log" 2>&1 </dev/null &
    echo $! >"$STATE/registry/registry.pid"
    local i
    for i in $(seq 1 60); do registry_ok && return 0; sleep 0.25; done
    tail -20 "$STATE/registry/registry.log" >&2 || true
    die "registry did not answer on http://$REG/v2/ within 15 s"
}

cmd_up() {
    mkdir -p "$STATE" "$CACHE"
    if engine_ok; then
        log "docker engine already answers with buildx and the containerd image store: leaving it alone"
    else
        system_apt_install ca-certificates curl
        install_engine
        link_buildx
    fi
    system_apt_install qemu-user-static binfmt-support docker-registry busybox-static
    phase install
    start_dockerd;  phase dockerd
    setup_qemu;     phase qemu
    start_registry; phase registry
    "$SCRIPTS/seed-images.sh"; phase seed
    awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "[engine] up: done in %.1fs\n", b-a}' >&2
}

stop_pidfile() { # stop_pidfile FILE NAME
    local f=$1 name=$2 pid i
    [ -f "$f" ] || { log "$name: no pid file"; return 0; }
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill "$pid"
        for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 30 s; killing"; kill -9 "$pid"; fi
    fi
    rm -f "$f"
}

cmd_down() {
    stop_pidfile "$STATE/registry/registry.pid" registry
    stop_pidfile "$STATE/dockerd/dockerd.pid" dockerd
}

cmd_status() {
    local bad=0
    if timeout 10 docker info >/dev/null 2>&1; then
        echo "engine:   docker $(docker version -f '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null), client $(docker version -f '{{.Client.Version}}' 2>/dev/null)"
        if docker info -f '{{json .DriverStatus}}' | grep -q io.containerd.snapshotter; then
            echo "store:    containerd image store"
        else
            echo "store:    MISSING containerd image store"; bad=1
        fi
    else
        echo "engine:   NOT RUNNING"; bad=1
    fi
    if docker buildx version >/dev/null 2>&1; then
        echo "buildx:   $(docker buildx version)"
    else
        echo "buildx:   MISSING"; bad=1
    fi
    if binfmt_aarch64_ok; then
        echo "binfmt:   qemu-aarch64 enabled ($(grep '^flags' /proc/sys/fs/binfmt_misc/qemu-aarch64))"
    else
        echo "binfmt:   qemu-aarch64 NOT enabled with the F flag"; bad=1
    fi
    if registry_ok; then
        echo "registry: http://$REG/v2/ answers"
        local ref
        while read -r ref; do
            [ -n "$ref" ] || continue
            if "$SCRIPTS/seed-images.sh" --present "$ref"; then
                echo "  seeded: $ref"
            else
                echo "  MISSING: $ref"; bad=1
            fi
        done < <("$SCRIPTS/seed-images.sh" --list)
    else
        echo "registry: http://$REG/v2/ NOT reachable"; bad=1
    fi
    return $bad
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
