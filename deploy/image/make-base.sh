#!/usr/bin/env bash
# The local base image for `make image` where no container registry can be reached: Debian bookworm with
# its python3 (3.11) and python3-venv, made from Debian packages by mmdebstrap and imported into podman.
# Skipped when the image exists and was made by this version of the script (a label holds its hash);
# `podman rmi localhost/llmagg-base:bookworm` makes the next `make image` take in Debian's latest updates.
# Usage: make-base.sh [IMAGE]   (default localhost/llmagg-base:bookworm)
set -euo pipefail
image=${1:-localhost/llmagg-base:bookworm}
recipe=$(sha1sum "$0" | cut -c1-12)
made=$(podman image inspect --format '{{index .Labels "llmagg.base.recipe"}}' "$image" 2>/dev/null || true)
if [ "$made" = "$recipe" ]; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$work/base.tar"
podman import --quiet --change "LABEL llmagg.base.recipe=$recipe" --change 'CMD ["python3"]' \
    "$work/base.tar" "$image" >/dev/null
echo "make-base: $image made from Debian bookworm" >&2
