#!/usr/bin/env bash
# Install the system packages Platen runs on, when they are missing (Debian/Ubuntu, as root).
set -euo pipefail

need=()
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v cupsd >/dev/null 2>&1 || need+=(cups)
[ -x /usr/lib/cups/filter/pdftopdf ] || need+=(cups-filters)
command -v ippeveprinter >/dev/null 2>&1 || need+=(cups-ipp-utils)
command -v gs >/dev/null 2>&1 || need+=(ghostscript)
# The analysis workers load Ghostscript's library once (resident_ghostscript.py); the
# ghostscript package depends on it, but a host may have gs from elsewhere.
/sbin/ldconfig -p 2>/dev/null | grep 'libgs\.so\.10 ' >/dev/null || need+=(libgs10)
command -v avahi-daemon >/dev/null 2>&1 || need+=(avahi-daemon)
command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus)
# The CUPS backend's shim is compiled (apps/cups-backend/.../shim.c, docs/cups.md).
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
# The desktop client's GUI tests open real Tk windows on a private X display.
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
# ... and dock its tray icon into a real system tray (trayer), checked with xwininfo.
command -v trayer >/dev/null 2>&1 || need+=(trayer)
command -v xwininfo >/dev/null 2>&1 || need+=(x11-utils)
# The directory tests read users from a real OpenLDAP server, run from a private folder.
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null 2>&1 || need+=(ldap-utils)
# The container images and the compose stack (deploy/containers, tests/containers):
# podman with runc (crun cannot run containers under this kind of machine's cgroups),
# debootstrap for the Debian base image no registry serves here, docker-compose for the
# compose file (against podman's Docker API).
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# Containers find each other by name (rabbitmq, postgres) on podman's CNI networks.
[ -x /usr/lib/cni/dnsname ] || need+=(golang-github-containernetworking-plugin-dnsname)
if [ ${#need[@]} -eq 0 ]; then
  "$(dirname "$0")/../containers/configure-podman.sh"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Platen needs these system packages: ${need[*]}" >&2
  echo "Install them (e.g. sudo apt-get install -y ${need[*]}) and try again." >&2
  exit 1
fi
echo "Installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged servers; Platen runs its own from a private folder.
for svc in rabbitmq-server postgresql cups slapd; do
  service "$svc" stop >/dev/null 2>&1 || true
done
"$(dirname "$0")/../containers/configure-podman.sh"
