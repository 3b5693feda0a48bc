#!/usr/bin/env bash
# Make podman run containers on this kind of machine (Debian 12, root, cgroups v1/hybrid):
# - runtime runc: crun refuses ("cgroups in hybrid mode not supported");
# - rlimits at or below the host's: a container asking for more fails in setrlimit.
# A drop-in file of Platen's own, so an admin's containers.conf is left as it is; written
# again only when it differs (idempotent). Skipped where podman is not installed.
set -euo pipefail
command -v podman >/dev/null 2>&1 || exit 0
dir=/etc/containers/containers.conf.d
file=$dir/50-platen.conf
want='# Written by Platen (deploy/containers/configure-podman.sh).
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"'
if [ -f "$file" ] && [ "$(cat "$file")" = "$want" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "podman needs $file (as root): see deploy/containers/configure-podman.sh" >&2
  exit 1
fi
mkdir -p "$dir"
printf '%s\n' "$want" >"$file"
