#!/usr/bin/env bash
# Build every Platen image with podman, from a Debian base made here: no image registry
# is needed, only a Debian mirror and a Python package index (an air-gapped site points
# PLATEN_DEBIAN_MIRROR and PIP_INDEX_URL / UV_INDEX_URL at its own mirrors).
#
#   deploy/containers/build.sh          # builds what is missing (the base once)
#   PLATEN_REBUILD=1 deploy/containers/build.sh   # builds the base again too
#
# Images: localhost/platen-debian:bookworm (the base), localhost/platen (every service,
# platenctl and the init job), localhost/platen-print-server (cupsd + the Platen backend),
# localhost/platen-rabbitmq and localhost/platen-postgres (from Debian's packages).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
base=localhost/platen-debian:bookworm

# The Debian mirror apt uses on this host, unless told another.
mirror="${PLATEN_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list | grep -E '/debian/?( |$)' | head -1 \
    | sed -E 's/^URIs: *//; s/^deb +(\[[^]]*\] +)?//; s/ .*//' || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

# The images a build replaces (build-image.sh removes each when it can; the rest, such as
# an old image another old one was built on, go at the end).
kept=()
if [ -n "${PLATEN_REBUILD:-}" ] || ! podman image exists "$base"; then
  echo "Building $base from $mirror (debootstrap)..."
  old_base="$(podman image inspect --format '{{.Id}}' "$base" 2>/dev/null || true)"
  tree="$(mktemp -d /var/tmp/platen-debian.XXXXXX)"
  # debootstrap mounts /proc (and may leave it mounted): never archive or delete through it.
  unmount() { grep -o " $tree/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true; }
  trap 'unmount; rm -rf --one-file-system "$tree"' EXIT
  debootstrap --variant=minbase bookworm "$tree" "$mirror" >/dev/null
  unmount
  # Trust what this host trusts: package indexes may be reached through a TLS proxy
  # whose CA only the host's bundle has. Kept apart from /etc/ssl/certs, which Debian's
  # ca-certificates package rewrites when an image installs it.
  mkdir -p "$tree/etc/ssl"
  cp /etc/ssl/certs/ca-certificates.crt "$tree/etc/ssl/platen-host-ca.crt"
  rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
  tar -C "$tree" --one-file-system -c . | podman import \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/platen-host-ca.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/platen-host-ca.crt' \
    --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf --one-file-system "$tree"
  trap - EXIT
  if [ -n "$old_base" ] && [ "$old_base" != "$(podman image inspect --format '{{.Id}}' "$base")" ]; then
    kept+=("$old_base")
  fi
fi

build() {  # image, Containerfile, context
  echo "Building $1..."
  local left
  left="$("$here/build-image.sh" "$1" "$2" "$3" --network host \
    ${PIP_INDEX_URL:+--build-arg PIP_INDEX_URL="$PIP_INDEX_URL"} \
    ${UV_INDEX_URL:+--build-arg UV_INDEX_URL="$UV_INDEX_URL"})"
  [ -z "$left" ] || kept+=("$left")
}
build localhost/platen-rabbitmq "$here/rabbitmq/Containerfile" "$here/rabbitmq"
build localhost/platen-postgres "$here/postgres/Containerfile" "$here/postgres"
build localhost/platen "$here/platen/Containerfile" "$root"
build localhost/platen-print-server "$here/print-server/Containerfile" "$here/print-server"
for old in "${kept[@]}"; do
  podman rmi "$old" >/dev/null 2>&1 \
    || echo "An older image is still in use (a running stack?), kept: $old"
done
echo "Images built:"
podman images --filter reference='localhost/platen*' --format '  {{.Repository}}:{{.Tag}}  {{.Size}}'
