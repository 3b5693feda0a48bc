#!/usr/bin/env bash
# Run the health checks of a compose project's containers every few seconds, for podman on
# a host without systemd: podman schedules health checks with systemd timers, and where
# there is no systemd nobody runs them, so no container ever becomes healthy and
# `depends_on: condition: service_healthy` waits forever. (Docker, and podman under
# systemd, need none of this.) Stops when killed.
#
#   deploy/containers/podman-healthchecks.sh platen &
set -uo pipefail
project="${1:?usage: podman-healthchecks.sh COMPOSE_PROJECT [SECONDS]}"
every="${2:-5}"
while true; do
  # All at once: one slow check delays no other.
  for id in $(podman ps -q --filter "label=com.docker.compose.project=$project"); do
    podman healthcheck run "$id" >/dev/null 2>&1 &
  done
  wait
  sleep "$every"
done
