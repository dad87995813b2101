#!/usr/bin/env bash
# Installs Debian's Prometheus server and promtool for the metrics tests, if missing. Without
# --no-install-recommends apt would also pull node-exporter, smartmontools and more; nothing is
# started (the tests start their own server on a free loopback port). Uses sudo only when not root.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then exit 0; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-prometheus: installing prometheus (prometheus, promtool)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
