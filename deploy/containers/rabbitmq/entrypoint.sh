#!/bin/sh
# The broker's secrets come from the `broker-secrets` volume the init job wrote: its TLS
# certificate and key, and the installer identity (default_user), so the broker never
# makes a `guest` user. Copied in here so the files belong to the rabbitmq user.
set -eu
secrets=/run/platen
for f in ca.pem server.pem server-key.pem installer.conf; do
  [ -s "$secrets/$f" ] || { echo "missing $secrets/$f: run the init job first" >&2; exit 1; }
done
install -d -o rabbitmq -g rabbitmq -m 0700 /etc/rabbitmq/tls
install -o rabbitmq -g rabbitmq -m 0644 "$secrets/ca.pem" "$secrets/server.pem" /etc/rabbitmq/tls/
install -o rabbitmq -g rabbitmq -m 0600 "$secrets/server-key.pem" /etc/rabbitmq/tls/
cat /etc/rabbitmq/platen.conf "$secrets/installer.conf" >/etc/rabbitmq/rabbitmq.conf
chown rabbitmq:rabbitmq /etc/rabbitmq/rabbitmq.conf
chmod 0600 /etc/rabbitmq/rabbitmq.conf
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
exec runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server
