#!/bin/bash
# The broker's health check (compose.yaml): a TCP connection to each of its listeners
# (AMQPS, management, Prometheus, clustering), which is what `rabbitmq-diagnostics
# check_port_connectivity` checks, without starting an Erlang VM for it: that costs about
# 0.7 CPU-seconds a check, 7 % of a core at one check every 10 s. AMQPS opens last in the
# broker's boot, so an answer there means the broker has booted.
# (A file, not a `bash -c` line in compose.yaml: podman splits a health check's
# arguments at their spaces.)
set -u
for port in 5671 15672 15692 25672; do
  exec 3<>"/dev/tcp/127.0.0.1/$port" || { echo "nothing listens on port $port" >&2; exit 1; }
  exec 3>&-
done
