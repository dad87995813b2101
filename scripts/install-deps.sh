#!/usr/bin/env bash
# Installs the system packages the build and the tests need, if they are missing.
# Uses sudo only when not root.
set -euo pipefail
need=()
dpkg -s libhiredis-dev >/dev/null 2>&1 || need+=(libhiredis-dev)
# TLS (rediss://): hiredis 0.14.1 has none, so the client links OpenSSL itself; the TLS tests make
# their certificates with the openssl command.
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Cron schedules' IANA time zones are read from its zone files; the tests check them against glibc.
dpkg -s tzdata >/dev/null 2>&1 || need+=(tzdata)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$(dirname "$0")/install-prometheus.sh"
