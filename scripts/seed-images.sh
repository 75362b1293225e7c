#!/usr/bin/env bash
# Seed the local registry with the stand-in base images (multi-platform, FROM scratch, no pulls).
#
#   scripts/seed-images.sh            build+push each seeded image missing from the registry
#   scripts/seed-images.sh --list     print the seeded refs
#   scripts/seed-images.sh --present REF   exit 0 if the registry holds REF
# ORCH_ENGINE_RESEED=1 rebuilds and pushes even what is present.
set -euo pipefail
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=images/common.sh
. "$SCRIPTS/images/common.sh"

M="$REG/mirror"
# ref|kind|go version
SEEDS=(
    "$M/registry.access.redhat.com/ubi9/ubi-minimal:9.6|busybox|"
    "$M/registry.access.redhat.com/ubi9/go-toolset:1.25|go|1.25.3"
    "$M/registry.access.redhat.com/ubi9/go-toolset:1.24|go|1.24.11"
    "$M/quay.io/jordigilh/golang:1.25-bookworm|go|1.25.5"
)

case "${1:-}" in
    --list) for s in "${SEEDS[@]}"; do echo "${s%%|*}"; done; exit 0 ;;
    --present) ref_present "$2"; exit $? ;;
    "") ;;
    *) echo "usage: $0 [--list | --present REF]" >&2; exit 2 ;;
esac

for s in "${SEEDS[@]}"; do
    IFS='|' read -r ref kind ver <<<"$s"
    if [ "${ORCH_ENGINE_RESEED:-0}" != 1 ] && ref_present "$ref"; then
        ilog "present: $ref"
        continue
    fi
    case $kind in
        busybox)
            t0=$(date +%s.%N)
            ensure_rootfs
            ctx=$(ctx_dir busybox "$CACHE"/rootfs/rootfs-{amd64,arm64}.tar)
            mapfile -t labels < <(standin_labels "$ref")
            docker buildx build --progress=quiet --platform linux/amd64,linux/arm64 --provenance=false --push \
                "${labels[@]}" -f "$IMAGES_DIR/busybox/Dockerfile" -t "$ref" "$ctx" >/dev/null
            rm -rf "$ctx"
            awk -v a="$t0" -v b="$(date +%s.%N)" -v r="$ref" 'BEGIN{printf "[images] pushed %s in %.1fs\n", r, b-a}' >&2
            ;;
        go) "$SCRIPTS/make-go-builder.sh" "$ver" "$ref" ;;
    esac
done
