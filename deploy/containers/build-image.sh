#!/usr/bin/env bash
# Build one image and remove the version its tag named before, so that rebuilding after
# each change of the code leaves no untagged image behind (every `make test` after a
# change rebuilt two images, some 180 MB of layers each, and kept the old ones for ever).
#
#   deploy/containers/build-image.sh TAG CONTAINERFILE CONTEXT [podman build options...]
#
# Prints the old image's ID when it could not be removed yet: another image is built on
# it (the old platen image under the old print server) or a container of a stack still
# running uses it. build.sh tries those again once every image is built.
set -euo pipefail
tag="$1" containerfile="$2" context="$3"
shift 3
old="$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
podman build --quiet --layers "$@" -t "$tag" -f "$containerfile" "$context" >/dev/null
new="$(podman image inspect --format '{{.Id}}' "$tag")"
if [ -n "$old" ] && [ "$old" != "$new" ]; then
  podman rmi "$old" >/dev/null 2>&1 || echo "$old"
fi
