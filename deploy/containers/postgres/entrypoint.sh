#!/bin/sh
# A new cluster is made with the superuser password from the `db-secrets` volume (written
# by the init job), and every connection must give a password (SCRAM): the superuser is
# the installer's alone; each service signs in as its own role (platen.db.roles).
set -eu
pwfile=/run/platen/superuser.password
[ -s "$pwfile" ] || { echo "missing $pwfile: run the init job first" >&2; exit 1; }
install -d -o postgres -g postgres -m 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  install -o postgres -g postgres -m 0600 "$pwfile" /tmp/pw
  runuser -u postgres -- initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pw \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f /tmp/pw
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' \
  -c unix_socket_directories=/tmp
