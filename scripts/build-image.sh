#!/usr/bin/env bash
# Build the mlpatron image with buildah (no daemon, chroot isolation) from a Debian base made
# here with debootstrap. Usage: scripts/build-image.sh [TAG]   (default localhost/mlpatron:latest)
#
# Environment:
#   BASE_IMAGE   use this base instead of bootstrapping one (e.g. python:3.11-slim-bookworm)
#   PIP_CONF     pip configuration handed to the build as a secret (default: this machine's
#                network settings from `pip config list`: index, extra https indexes, proxy, trust)
#   CA_BUNDLE    CA certificates for pip inside the build (default: $PIP_CERT or Debian's bundle)
# Secrets are mounted for the pip step only (RUN --mount=type=secret) and never kept in a layer.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-localhost/mlpatron:latest}"
BASE_TAG="localhost/mlpatron-base:bookworm"

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need buildah buildah
export BUILDAH_ISOLATION=chroot

if [ -z "${BASE_IMAGE:-}" ]; then
    BASE_IMAGE="$BASE_TAG"
    if ! buildah inspect --type image "$BASE_TAG" >/dev/null 2>&1; then
        need debootstrap debootstrap
        root="$(mktemp -d /var/tmp/mlpatron-base.XXXXXX)"
        trap 'rm -rf "$root"' EXIT
        echo "bootstrapping $BASE_TAG (Debian bookworm, minbase + python3 + git)"
        debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,git,ca-certificates \
            bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        ctr="$(buildah from scratch)"
        mnt="$(buildah mount "$ctr")"
        cp -a "$root"/. "$mnt"/
        buildah umount "$ctr" >/dev/null
        buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
        buildah commit -q --rm "$ctr" "$BASE_TAG" >/dev/null
    fi
fi

test -f frontend/dist/index.html || { echo "frontend/dist is missing: run 'make frontend' first" >&2; exit 1; }

secrets="$(mktemp -d)"
trap 'rm -rf "$secrets"' EXIT
if [ -n "${PIP_CONF:-}" ]; then
    cp "$PIP_CONF" "$secrets/pip.conf"
else
    # Only the network settings carry over: local paths (file:// indexes, find-links, constraints)
    # do not exist inside the build.
    python3 -m pip config list 2>/dev/null | python3 -c '
import sys
keep = {"index-url", "extra-index-url", "proxy", "trusted-host", "timeout", "retries"}
print("[global]")
for line in sys.stdin:
    key, _, value = line.strip().partition("=")
    name = key.rsplit(".", 1)[-1]
    value = value.strip().strip("\x27\"")
    if name in keep and "file:" not in value:
        print(f"{name} = {value}")
' > "$secrets/pip.conf"
fi
ca="${CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}"
if [ -f "$ca" ]; then cp "$ca" "$secrets/cacert"; else : > "$secrets/cacert"; fi

buildah build --isolation chroot --layers \
    --build-arg PYTHON_IMAGE="$BASE_IMAGE" \
    --secret id=pipconf,src="$secrets/pip.conf" \
    --secret id=cacert,src="$secrets/cacert" \
    -t "$TAG" .
echo "built $TAG ($(buildah images --format '{{.Size}}' "$TAG" | head -1))"
