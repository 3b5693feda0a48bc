#!/bin/sh
# Every Platen container starts here: the identity's settings and secrets are read from
# the file the init job wrote into this container's own secrets volume (never from the
# compose file, nor the container's configuration, which `inspect` shows), then the
# command runs.
set -eu
if [ -f /run/platen/platen.env ]; then
  set -a
  . /run/platen/platen.env
  set +a
fi
exec "$@"
